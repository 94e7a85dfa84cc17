"""The landscape analyses (memo073 Fig 5, Figs 11-12, Table 1) on nets whose answer is
known, their claims on rows where they hold and where they fail, and each target end to
end: ANALYZE on small trained nets, then BUILD through report.build."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deeptheory import claims as C
from deeptheory import models, report
from deeptheory.analyses import TrainedRun
from deeptheory.analyses import landscape as L
from deeptheory.engine import train_run
from deeptheory.run.evaluation import evaluate
from deeptheory.run.streams import initial_model
from deeptheory.run.subsets import subset
from deeptheory.spec import RunSpec
from deeptheory.targets import Inputs, get
from deeptheory.targets import landscape as T

from conftest import config_claims, train_settings, held

TOL = C.Tolerances(config_claims())


def spec(seed=0, labels="natural", subset_seed=None, **kw) -> RunSpec:
    return RunSpec(dataset="tiny", model="allconv5", width=2, N=60, labels=labels, seed=seed, n_test=50,
                   subset_seed=subset_seed, **train_settings(batch_size=16, max_epochs=4, eval_every=2, **kw))


def trained(s: RunSpec, data) -> TrainedRun:
    """A net trained in the test, handed over as the analysis job would load it."""
    result = train_run(s, data)
    model = models.build(s.model, s.width, data.input_shape, data.num_classes)
    model.load_state_dict(result.state_dict)
    idx, y = subset(s, data)
    return TrainedRun(s, model.eval(), data.x_train[idx], y, data.x_test[: s.n_test], data.y_test[: s.n_test], data,
                      pd.DataFrame(result.rows))


@pytest.fixture(scope="module")
def nets(tiny):
    """Three minimizers of one training set per label kind (seeds 0, 1, 2 on seed 0's subset)."""
    return {lab: [trained(spec(s, lab, 0 if s else None), tiny) for s in range(3)] for lab in ("natural", "random")}


# --- the computations -----------------------------------------------------------------------

def test_mean_of_minibatch_gradients_is_the_full_gradient(tiny):
    s = spec()
    model = initial_model(s, tiny).eval()
    x, y = tiny.x_train[:60], tiny.y_train[:60]
    samples = L.minibatch_gradients(model, x, y, 16, 600, torch.Generator().manual_seed(0)).double()
    full = L.full_gradient(model, x, y).double()
    se = samples.std(0) / math.sqrt(len(samples))
    moving = se > 0
    assert samples.shape == (600, models.n_params(model))
    assert ((samples.mean(0) - full).abs()[moving] <= 5 * se[moving] + 1e-6).all()
    # One "minibatch" of the whole set is the full gradient itself.
    whole = L.minibatch_gradients(model, x, y, 60, 1, torch.Generator().manual_seed(1))[0]
    assert torch.allclose(whole, L.full_gradient(model, x, y), atol=1e-5)


def test_component_stats_tell_gaussian_from_heavy_tails_and_skip_constant_components():
    rng = np.random.default_rng(0)
    samples = np.column_stack([rng.normal(2.0, 4.0, 2000), rng.laplace(0, 1, 2000), np.full(2000, 0.3)])
    st = L.component_stats(samples)
    assert abs(st["excess_kurtosis"][0]) < 0.3 and st["shapiro_p"][0] > 0.01
    assert abs(st["mean_over_sd"][0] - 0.5) < 0.05
    assert st["excess_kurtosis"][1] > 2 and st["shapiro_p"][1] < 1e-6
    assert np.isnan([st[k][2] for k in ("excess_kurtosis", "skewness", "shapiro_p", "mean_over_sd")]).all()


def test_simplex_grid_and_its_vertices_reproduce_the_minimizers_own_errors(nets):
    lambdas = L.simplex_grid(5)
    assert len(lambdas) == 15 and np.allclose(lambdas.sum(1), 1) and (lambdas >= 0).all()
    runs = nets["natural"]
    vertices = np.eye(3)
    loss, err = L.simplex_errors(runs[0].model, [L.weights(r.model) for r in runs], vertices, runs[0].x, runs[0].y)
    for i, r in enumerate(runs):
        own_loss, own_err = evaluate(r.model, r.x, r.y)
        assert err[i].item() == pytest.approx(own_err) and loss[i].item() == pytest.approx(own_loss, rel=1e-5)


class Phase(nn.Module):
    """Class 0 scores cos(a), class 1 scores 0: every example (label 0) is right while
    cos(a) > 0. From a = 0 along d = +1 the error jumps to 1 at r = pi/2 and falls back to
    0 at 3 pi/2: not monotone in r."""

    def __init__(self, a=0.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([a]))

    def forward(self, x):
        score = x[:, :1] * 0 + torch.cos(self.a)
        return torch.cat([score, torch.zeros_like(score)], dim=1)


class Margin(nn.Module):
    """Class 0 scores w0, class 1 scores w1 (a linear net on inputs of 1): right while w0 > w1."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -1.0]))

    def forward(self, x):
        return x[:, :1] * 0 + self.w


def test_flatness_radius_is_the_first_crossing_of_a_non_monotone_error():
    model, x, y = Phase(), torch.ones(10, 1), torch.zeros(10, dtype=torch.long)
    dirs = {"a": torch.tensor([[1.0], [-1.0]])}
    radius, censored, base = L.flatness_radius(model, x, y, dirs, 0.05, 100.0, 0.001)
    # Plain bisection on [0, 100] would read cos(50) > 0 as "still flat" and end elsewhere.
    assert base == 0 and not censored.any()
    assert np.allclose(radius, math.pi / 2, atol=0.002)


def test_flatness_radius_of_a_margin_and_a_direction_that_never_leaves_it():
    model, x, y = Margin(), torch.ones(10, 1), torch.zeros(10, dtype=torch.long)
    s = 1 / math.sqrt(2)
    # Towards w1 > w0 the gap 2 closes at r = 2 / sqrt 2; the opposite way it only widens.
    dirs = {"w": torch.tensor([[-s, s], [s, -s]])}
    radius, censored, _ = L.flatness_radius(model, x, y, dirs, 0.05, 100.0, 0.001)
    assert radius[0] == pytest.approx(math.sqrt(2), abs=0.002) and not censored[0]
    assert radius[1] == 100.0 and censored[1]


def test_directions_have_unit_norm_over_their_parameter_set_only(tiny):
    params = L.weights(initial_model(spec(), tiny))
    top = L.top_layer(params)
    assert top == ["8.weight", "8.bias"]
    dirs = L.unit_directions(params, top, 4, torch.Generator().manual_seed(0))
    norms = torch.sqrt(sum((d.reshape(4, -1) ** 2).sum(1) for d in dirs.values()))
    assert torch.allclose(norms, torch.ones(4))
    assert all((dirs[k] == 0).all() for k in params if k not in top)


# --- claims on rows -------------------------------------------------------------------------

def grad_rows(kurtosis, ratio, n=50, constant=0):
    rows = pd.DataFrame({"component": np.arange(n), "param": "0.weight", "sd": 1.0, "excess_kurtosis": kurtosis,
                         "skewness": 0.1, "shapiro_p": 0.3, "mean_over_sd": ratio})
    rows.loc[: constant - 1, ["sd"]] = 0.0
    rows.loc[: constant - 1, ["excess_kurtosis", "skewness", "shapiro_p", "mean_over_sd"]] = np.nan
    return rows


def verdicts(rows):
    return {r["id"].split(":")[1]: held(r) for r in rows}


def test_grad_hist_claims_hold_on_gaussian_components_with_small_means():
    assert verdicts(T._gaussian_claims(grad_rows(0.2, 0.1), TOL)) == {"components-gaussian": True, "mean-small": True}


def test_grad_hist_claims_outside_convergence_are_inconclusive():
    rows = grad_rows(3.0, 1.0).assign(train_err_final=0.02)
    out = T._gaussian_claims(rows, TOL)
    assert [(r["verdict"], r["reason"]) for r in out] == [("inconclusive", C.OUT_OF_REGIME)] * 2
    assert "median |excess kurtosis| 3.000" in out[0]["measured"]


def test_grad_hist_claims_fail_on_heavy_tails_and_large_means():
    v = verdicts(T._gaussian_claims(grad_rows(3.0, 1.0, constant=5), TOL))
    assert v == {"components-gaussian": False, "mean-small": False}
    rows = T._gaussian_claims(grad_rows(0.0, 0.0, n=4, constant=4), TOL)
    assert [held(r) for r in rows] == [None, None] and all("constant" in r["detail"] for r in rows)


def grid_rows(kurtosis_by_size: dict, n=20, train_err=0.0, batches=400, N=2000):
    """The batch-size grid's rows: every component at each size has the given excess kurtosis."""
    return pd.DataFrame([{"component": c, "batch_size": b, "sd": 1.0 / b, "per_example_sd": 1.0,
                          "fpc_sd": float(L.finite_population_sd(b, N)), "excess_kurtosis": k, "batches": batches,
                          "N": N, "train_err_final": train_err, "sample": T.GRID}
                         for b, k in kurtosis_by_size.items() for c in range(n)])


# Heavy tails at B = 1 and at B = N - 1 (the same law mirrored), Gaussian between.
WINDOW = {1: 40.0, 8: 5.0, 128: 0.2, 1000: 0.1, 1872: 0.3, 1999: 38.0}


def test_batch_size_claims_hold_on_a_gaussian_window():
    rows = T._batch_size_claims(grid_rows(WINDOW), TOL)
    assert verdicts(rows) == {"gaussian-at-intermediate-batch": True, "not-gaussian-at-extreme-batches": True}
    assert "least between the extremes 0.100 at B = 1000" in rows[0]["measured"]
    assert "se 0.24" in rows[0]["detail"]


def test_batch_size_claims_fail_without_a_window_or_with_gaussian_extremes():
    heavy = {b: 5.0 for b in WINDOW}          # no size between is Gaussian
    assert verdicts(T._batch_size_claims(grid_rows(heavy), TOL))["gaussian-at-intermediate-batch"] is False
    gaussian = {b: 0.1 for b in WINDOW}       # Gaussian even at single examples
    assert verdicts(T._batch_size_claims(grid_rows(gaussian), TOL)) == {
        "gaussian-at-intermediate-batch": True, "not-gaussian-at-extreme-batches": False}


def test_batch_size_claims_inconclusive_within_noise_off_convergence_or_on_a_short_grid():
    near = {**WINDOW, 1: 1.4, 128: 1.2, 1000: 1.1, 1872: 1.3}  # within 2.5 se (0.61) of grad_kurtosis_max 1
    v = {r["id"].split(":")[1]: (r["verdict"], r["reason"]) for r in T._batch_size_claims(grid_rows(near), TOL)}
    assert v == {"gaussian-at-intermediate-batch": ("inconclusive", C.WITHIN_NOISE),
                 "not-gaussian-at-extreme-batches": ("inconclusive", C.WITHIN_NOISE)}
    unfit = T._batch_size_claims(grid_rows(WINDOW, train_err=0.01), TOL)
    assert [(r["verdict"], r["reason"]) for r in unfit] == [("inconclusive", C.OUT_OF_REGIME)] * 2
    short = T._batch_size_claims(grid_rows({1: 40.0, 1999: 38.0}), TOL)
    assert [(r["verdict"], r["reason"]) for r in short] == [("inconclusive", C.UNTESTABLE)] * 2


def test_batch_means_are_minibatch_gradients_with_the_finite_population_spread(tiny):
    """Per-example gradients averaged over minibatches give the gradient of the minibatch's
    mean loss, their full mean the full gradient; the sd shrinks by the finite-population factor."""
    model = initial_model(spec(), tiny).eval()
    x, y = tiny.x_train[:60], tiny.y_train[:60]
    comps = np.arange(0, models.n_params(model), 7)
    G = L.per_example_gradients(model, x, y, comps, chunk=16)
    full = L.full_gradient(model, x, y)[torch.as_tensor(comps)].double()
    torch.testing.assert_close(G.double().mean(0), full, atol=1e-6, rtol=1e-4)
    pick = torch.tensor([3, 17, 42])
    direct = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[pick]), y[pick]),
                                 list(model.parameters()))
    direct = torch.cat([g.reshape(-1) for g in direct])[torch.as_tensor(comps)].double()
    torch.testing.assert_close(G[pick].double().mean(0), direct, atol=1e-6, rtol=1e-4)
    draws = L.batch_means(G, 45, 4000, torch.Generator().manual_seed(0))
    moving = G.double().std(0).numpy() > 0
    ratio = draws.std(0, ddof=1)[moving] / (G.double().std(0).numpy()[moving] * L.finite_population_sd(45, 60))
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    assert L.batch_means(G, 60, 3, torch.Generator()).std(0).max() < 1e-12   # the whole set: no spread
    assert L.kurtosis_se(400) == pytest.approx(math.sqrt(24 / 400), rel=0.02)


def simplex_rows(dataset, labels, flat_share, unit, grid=11):
    """A unit whose vertices fit and whose first ``flat_share`` of grid points stay within
    epsilon of them; the rest at chance."""
    lam = L.simplex_grid(grid)
    err = np.full(len(lam), 0.9)
    vertex = lam.max(1) == 1
    order = np.argsort(-lam.max(1), kind="stable")  # vertices first, then nearest the vertices
    err[order[: max(int(flat_share * len(lam)), 3)]] = 0.0
    err[vertex] = 0.0
    return pd.DataFrame({"unit": unit, "l1": lam[:, 0], "l2": lam[:, 1], "l3": lam[:, 2], "train_err": err,
                         "train_loss": err, "dataset": dataset, "labels": labels, "model": "allconv5", "N": 250,
                         "n_params": 3000, "seeds": "0,1,2"})


def landscape_inputs(rows, used=("cifar10", "mnist")):
    return Inputs("t3-landscape", {}, TOL, requested=["cifar10", "mnist"], used=list(used), analyses=rows)


def units(dataset, labels, shares, tag=""):
    """One simplex unit (triple of minimizers) per share."""
    return pd.concat([simplex_rows(dataset, labels, sh, f"{tag or dataset}/{labels}/{i}") for i, sh in enumerate(shares)])


def test_landscape_claims_hold_when_natural_labels_have_the_larger_flat_region():
    rows = pd.concat([units(d, lab, shares) for d in ("cifar10", "mnist")
                      for lab, shares in (("natural", (0.6, 0.55)), ("random", (0.1, 0.15)))])
    out = T.landscape(landscape_inputs(rows))
    assert verdicts(out.claims) == {"flatter-natural-cifar10": True, "flatter-natural-mnist": True}
    assert set(out.table.columns) >= {"l1", "l2", "l3", "train_err", "train_loss", "flat", "x", "y"}


def test_landscape_claims_fail_when_random_labels_are_flatter_and_are_inconclusive_within_noise_or_missing():
    rows = pd.concat([units("cifar10", "natural", (0.6, 0.55)), units("cifar10", "random", (0.8, 0.85)),
                      units("mnist", "natural", (0.6, 0.55))])
    out = {r["id"]: r for r in T.landscape(landscape_inputs(rows)).claims}
    assert held(out["t3-landscape:flatter-natural-cifar10"]) is False
    assert out["t3-landscape:flatter-natural-mnist"]["reason"] == C.UNTESTABLE
    # As flat, within the spread of the units: neither.
    rows = pd.concat([units("cifar10", "natural", (0.6, 0.5)), units("cifar10", "random", (0.55, 0.45))])
    out = {r["id"]: r for r in T.landscape(landscape_inputs(rows)).claims}
    assert out["t3-landscape:flatter-natural-cifar10"]["reason"] == C.WITHIN_NOISE
    # One triple per label: a ratio of 6.5 is reported, but no standard error to read it against.
    rows = pd.concat([units("cifar10", "natural", (0.6,)), units("cifar10", "random", (0.1,))])
    row = {r["id"]: r for r in T.landscape(landscape_inputs(rows)).claims}["t3-landscape:flatter-natural-cifar10"]
    assert row["reason"] == C.UNTESTABLE and "ratio 6.50" in row["measured"]


def test_landscape_counts_a_unit_two_asked_sets_share_once_and_says_so():
    rows = pd.concat([units("fashion-mnist", lab, shares, "u") for lab, shares in
                      (("natural", (0.6, 0.55)), ("random", (0.1, 0.15)))])
    out = T.landscape(landscape_inputs(pd.concat([rows, rows]), used=("fashion-mnist", "fashion-mnist")))
    assert len(out.table) == len(rows)
    assert all(held(r) and "not independent" in r["detail"] for r in out.claims)


def radius_rows(radii: dict, nets=1, directions=10, sd=0.5):
    """radii: (dataset, labels, params) -> mean radius; directions spread by +-sd."""
    rows = []
    for (d, lab, p), r in radii.items():
        for net in range(nets):
            for i in range(directions):
                rows.append({"unit": f"{d}/{lab}/{net}", "dataset": d, "labels": lab, "params": p,
                             "direction": i, "radius": r + sd * (1 if i % 2 else -1), "censored": False,
                             "model": "allconv5", "N": 250, "n_params": 3000, "epsilon": 0.05, "r_max": 100.0})
    return pd.DataFrame(rows)


def flatness_inputs(rows):
    return Inputs("t3-flatness", {}, TOL, requested=["cifar10", "mnist"], used=["cifar10", "mnist"], analyses=rows)


def published_like(override=None):
    radii = {(d, lab, p): {"natural": 10.0, "random": 3.0}[lab]
             for d in ("cifar10", "mnist") for lab in ("natural", "random") for p in T.PARAM_SETS}
    return {**radii, **(override or {})}


def test_flatness_claim_holds_when_natural_labels_are_flatter_in_every_column():
    out = T.flatness(flatness_inputs(radius_rows(published_like(), nets=2)))
    assert verdicts(out.claims) == {"natural-flatter-every-column": True}
    row = out.table[(out.table["requested"] == "mnist") & (out.table["params"] == "all parameters")
                    & (out.table["labels"] == "natural")].iloc[0]
    assert row["published_mean"] == 45.4 and row["published_sd"] == 2.7 and row["radius_mean"] == 10.0


def test_flatness_claim_fails_when_one_column_is_within_the_spread_or_missing():
    close = published_like({("mnist", "random", "top layer"): 9.9})
    assert verdicts(T.flatness(flatness_inputs(radius_rows(close))).claims) == {"natural-flatter-every-column": None}
    flatter = published_like({("mnist", "random", "top layer"): 20.0})
    assert verdicts(T.flatness(flatness_inputs(radius_rows(flatter))).claims) == {"natural-flatter-every-column": False}
    missing = {k: v for k, v in published_like().items() if k != ("cifar10", "random", "top layer")}
    (row,) = T.flatness(flatness_inputs(radius_rows(missing))).claims
    assert row["verdict"] == "inconclusive"


# --- each target end to end -----------------------------------------------------------------

def build(tid, tmp_path, units: dict, cfg: dict, requested, used):
    results = {u: get(tid).analyze(runs, cfg, 0) for u, runs in units.items()}
    inputs = Inputs(tid, {"analysis": cfg}, TOL, requested=requested, used=used,
                    analyses=pd.concat([r.table.assign(unit=u) for u, r in results.items()], ignore_index=True),
                    arrays={u: r.arrays for u, r in results.items()})
    rows = report.build(get(tid), inputs, tmp_path, config={})
    assert all((tmp_path / name).exists() for name in report.OUTPUTS.values())
    return rows, pd.read_csv(tmp_path / "table.csv")


def test_grad_hist_end_to_end(nets, tmp_path):
    run = nets["natural"][0]
    sizes = [1, 4, 30, 56, 59]
    rows, table = build("t3-grad-hist", tmp_path, {run.spec.run_id: [run]},
                        {"batches": 40, "components": 12, "shown": 2, "batch_sizes": sizes}, "cifar10", "tiny")
    assert len(table) == 12 * (1 + len(sizes)) and set(rows["id"]) == {
        "t3-grad-hist:components-gaussian", "t3-grad-hist:mean-small", "t3-grad-hist:gaussian-at-intermediate-batch",
        "t3-grad-hist:not-gaussian-at-extreme-batches"}
    grid = table[table["sample"] == T.GRID]
    assert sorted(grid["batch_size"].unique()) == sizes and (grid["sd"] <= grid["per_example_sd"] + 1e-9).all()
    with pytest.raises(ValueError, match="batch_sizes"):
        get("t3-grad-hist").analyze([run], {"batches": 4, "components": 3, "shown": 1, "batch_sizes": [1, 60]}, 0)


def test_landscape_end_to_end(nets, tmp_path):
    units = {runs[0].spec.run_id: runs for runs in nets.values()}
    rows, table = build("t3-landscape", tmp_path, units, {"grid": 5}, ["cifar10", "mnist"], ["tiny", "tiny"])
    assert len(table) == 2 * 15 and len(rows) == 2
    vertex = table[table["l1"] == 1.0].set_index("labels")["train_err"]
    assert vertex["natural"] == pytest.approx(nets["natural"][0].metrics["train_err"].iloc[-1])


def test_flatness_end_to_end(nets, tmp_path):
    units = {r.spec.run_id: [r] for r in (nets["natural"][0], nets["random"][0])}
    rows, table = build("t3-flatness", tmp_path, units, {"directions": 3, "epsilon": 0.05, "r_max": 100.0,
                                                         "r_tol": 0.01}, ["cifar10", "mnist"], ["tiny", "tiny"])
    assert len(table) == 8 and list(rows["id"]) == ["t3-flatness:natural-flatter-every-column"]
    assert table["radius_mean"].between(0, 100).all()
