"""m90-normalization (memo090): the homogeneous CNN families plain, unbalanced, weight- and
batch-normalized; the GD conservation law behind the balance claim; setting B's deep net;
each claim on measurements that satisfy it and on ones that break it; the target from
trained nets through report.build."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from deeptheory import claims as C
from deeptheory import models, report
from deeptheory.models import normalization as NZ
from deeptheory.analyses import load
from deeptheory.atomic import save_torch, write_csv
from deeptheory.packed import PackOptions, train_packed
from deeptheory.engine import train_run
from deeptheory.run.streams import initial_model
from deeptheory.run.subsets import training_subset
from deeptheory.spec import RunSpec
from deeptheory.synthetic import linear, nets
from deeptheory.targets import Inputs, get
from deeptheory.targets import normalization as T

from conftest import config_claims, train_settings, held

TOL = C.Tolerances(config_claims())
TID = "m90-normalization"
SHAPE = (1, 20, 20)


def built(family, seed=0, width=4):
    model = models.build(family, width, SHAPE, 10)
    models.init_params(model, seed)
    return model.eval()


@pytest.fixture
def batch(tiny):
    return tiny.x_train[:64], tiny.y_train[:64]


def scale_layer(model, k: int, c: float):
    """The model with layer k's trained tensor (W_k, or V_k) times c."""
    out = {n: p.detach().clone() for n, p in model.named_parameters()}
    name = [n for n, m in model.named_modules() if m in model.weight_layers()][k]
    out[f"{name}.weight"] *= c
    return out


# --- the families ----------------------------------------------------------------------------

def test_every_family_is_bias_free_and_maps_inputs_to_class_scores():
    for family in NZ.BUILDERS:
        for shape in [(1, 28, 28), (3, 32, 32)]:
            net = models.build(family, 4, shape, 10)
            assert net(torch.randn(3, *shape)).shape == (3, 10)
            assert all(m.bias is None for m in net.weight_layers())
            assert not list(net.buffers())   # BN keeps no running statistics: the packed engine carries none


@pytest.mark.parametrize("k", [0, 1, 2])
def test_the_plain_net_is_homogeneous_of_degree_one_in_each_layer(batch, k):
    x, y = batch
    net = built("hcnn")
    out = functional_call(net, scale_layer(net, k, 3.0), (x,))
    torch.testing.assert_close(out, 3.0 * net(x), rtol=1e-5, atol=1e-6)
    # ... so its normalized margin is the same for any scale of any layer
    other = built("hcnn")
    other.load_state_dict(scale_layer(net, k, 3.0))
    moved, base = NZ.normalized_margin(other, x, y), NZ.normalized_margin(net, x, y)
    assert moved["margin"] == pytest.approx(3 * base["margin"], rel=1e-5)
    assert moved["normalized_margin"] == pytest.approx(base["normalized_margin"], rel=1e-5)


def test_balanced_init_has_equal_layer_norms_and_the_unbalanced_one_r_and_1_over_r(batch):
    x, _ = batch
    plain, unbalanced, wn = built("hcnn"), built("hcnnu"), built("hcnnwn")
    sq = NZ.squared_norms(plain)
    assert sq["sq_w1"] == pytest.approx(sq["sq_w2"]) == pytest.approx(sq["sq_w3"])
    su, r = NZ.squared_norms(unbalanced), NZ.UNBALANCE
    assert su["sq_w1"] == pytest.approx(r ** 2 * sq["sq_w1"]) and su["sq_w3"] == pytest.approx(sq["sq_w3"] / r ** 2)
    assert su["sq_w2"] == pytest.approx(sq["sq_w2"])
    # The same draws, the same function: balancing keeps the product of norms, WN starts at g_k = |V_k|.
    torch.testing.assert_close(unbalanced(x), plain(x), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(wn(x), plain(x), rtol=1e-4, atol=1e-6)


def test_a_wn_layer_is_g_times_the_direction_of_v(batch):
    x, y = batch
    net = built("hcnnwn")
    for m in net.weight_layers():
        assert float(m.effective_weight().detach().norm()) == pytest.approx(float(m.gain.detach().abs()), rel=1e-5)
    # Scaling V changes nothing: only its direction and g enter the net.
    out = functional_call(net, scale_layer(net, 1, 5.0), (x,))
    torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-6)
    nm = NZ.normalized_margin(net, x, y)
    assert nm["rho"] == pytest.approx(math.prod(float(m.gain.detach().abs()) for m in net.weight_layers()), rel=1e-5)


def test_a_bn_net_is_invariant_to_its_conv_scale_and_its_effective_weights_rebuild_it(batch):
    x, y = batch
    net = built("hcnnbn")
    out = functional_call(net, scale_layer(net, 0, 7.0), (x,))
    torch.testing.assert_close(out, net(x), rtol=1e-4, atol=1e-5)
    # The frozen-statistics net: effective weight gamma V / sigma and bias beta - gamma mu / sigma per channel.
    eff = NZ.effective_layers(net, x)
    h = x
    for W, bn in zip(eff[:2], [m for m in net if isinstance(m, torch.nn.BatchNorm2d)]):
        conv = F.conv2d(h, W, stride=NZ.STRIDE)
        mean = conv.mean(dim=(0, 2, 3), keepdim=True)
        h = torch.relu(conv - mean + bn.bias.view(1, -1, 1, 1))
    torch.testing.assert_close(F.linear(h.flatten(1), eff[2]), net(x), rtol=1e-4, atol=1e-5)
    # Scaling a BN scale gamma_1 by c scales |W_1^eff| by c and |W_2^eff| by 1/c: the normalized margin stays.
    params = {n: p.detach().clone() for n, p in net.named_parameters()}
    params["1.weight"] *= 3.0
    params["1.bias"] *= 3.0
    other = built("hcnnbn")
    other.load_state_dict(params)
    a, b = NZ.normalized_margin(net, x, y), NZ.normalized_margin(other, x, y)
    assert b["margin"] == pytest.approx(a["margin"], rel=1e-4)
    assert b["eff_norm1"] == pytest.approx(3 * a["eff_norm1"], rel=1e-4)
    assert b["normalized_margin"] == pytest.approx(a["normalized_margin"], rel=1e-4)


def test_margins_are_the_true_score_over_the_best_other():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    assert NZ.margins(logits, torch.tensor([0, 2])).tolist() == [1.0, -4.0]


@pytest.mark.parametrize("family", ["hcnnwn", "hcnnbn"])
def test_normalized_families_pack_with_vmap_as_they_run_alone(tiny, family):
    nets_ = [built(family, seed) for seed in (0, 1)]
    stacked = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets_]) for n, _ in nets_[0].named_parameters()}
    x = tiny.x_train[:32]
    out = vmap(lambda p: functional_call(nets_[0], p, (x,)))(stacked)
    for r, m in enumerate(nets_):
        torch.testing.assert_close(out[r], m(x), rtol=1e-5, atol=1e-6)


def spec(family, **kw):
    settings = {**train_settings(lr=0.1, momentum=0.0, batch_size=40, max_epochs=15), **kw}
    return RunSpec(dataset="tiny", model=family, width=4, N=40, n_test=100, eval_every=5, stop_at_zero=False,
                   recipe="gd", **settings)


@pytest.mark.parametrize("family", ["hcnnwn", "hcnnbn"])
def test_the_packed_path_trains_them_as_the_single_run_path(tiny, family):
    # (momentum 0.5: the single-run path's checkpoint needs a momentum buffer)
    s = spec(family, momentum=0.5, max_epochs=6)
    alone = train_run(s, tiny)
    packed = train_packed([s, spec(family, momentum=0.5, max_epochs=6, seed=1)], tiny, options=PackOptions(compile=False))
    for k, v in alone.state_dict.items():
        torch.testing.assert_close(packed[0].state_dict[k], v, rtol=1e-4, atol=1e-5)


# --- the conservation law under GD -----------------------------------------------------------

def test_gd_changes_every_layer_norm_by_the_same_first_order_term(tiny):
    """<W_k, dL/dW_k> = sum_i <dL/df_i, f_i> for every layer k (Euler, f of degree 1 in W_k),
    so |W_k - eta g_k|^2 - |W_k|^2 = -2 eta c + eta^2 |g_k|^2: under gradient flow the
    differences stay; a GD step moves them by eta^2 (|g_k|^2 - |g_j|^2), no more."""
    s = spec("hcnnu")
    model = initial_model(s, tiny).double()
    x, y = training_subset(s, tiny)
    out = model(x.double())
    loss = F.cross_entropy(out, y)
    grads = torch.autograd.grad(loss, [m.weight for m in model.weight_layers()])
    weights = [m.weight.detach() for m in model.weight_layers()]
    inner = [float((W * g).sum()) for W, g in zip(weights, grads)]
    assert inner[0] == pytest.approx(inner[1], rel=1e-8) and inner[1] == pytest.approx(inner[2], rel=1e-8)
    eta = 0.1
    before = [float((W ** 2).sum()) for W in weights]
    after = [float(((W - eta * g) ** 2).sum()) for W, g in zip(weights, grads)]
    for k in range(2):
        drift = (after[k] - after[k + 1]) - (before[k] - before[k + 1])
        expected = eta ** 2 * (float((grads[k] ** 2).sum()) - float((grads[k + 1] ** 2).sum()))
        assert drift == pytest.approx(expected, rel=1e-6, abs=1e-12)


# --- setting B ---------------------------------------------------------------------------------

def test_the_three_methods_start_as_the_same_function_and_train_their_own_parameters():
    X, y = linear.separable_blobs(20, 3, 0.3, np.random.default_rng(0))
    starts = {m: nets.train_normalized(X, y, [3, 6, 6, 1], m, 1, 0.05)[0] for m in nets.NORMALIZATIONS}
    for m in ("wn", "bn"):
        assert starts[m]["margin"] == pytest.approx(starts["plain"]["margin"], rel=1e-9)
        assert starts[m]["normalized_margin"] == pytest.approx(starts["plain"]["normalized_margin"], rel=1e-6)
    assert starts["plain"]["sq_w_1"] == pytest.approx(starts["plain"]["sq_w_3"])   # balanced
    assert {"sq_g_1", "sq_g_2", "sq_g_3"} <= set(starts["wn"]) and "sq_g_1" not in starts["bn"]
    un = nets.train_normalized(X, y, [3, 6, 6, 1], "plain", 1, 0.05, unbalance=2.0)[0]
    assert un["sq_w_1"] == pytest.approx(16 * un["sq_w_3"]) and un["margin"] == pytest.approx(starts["plain"]["margin"])


def test_bn_like_effective_weights_reproduce_the_net_on_its_batch():
    X, y = linear.separable_blobs(20, 3, 0.3, np.random.default_rng(1))
    x = torch.as_tensor(X)
    params = nets.normalized_params(nets.relu_net([3, 6, 6, 1], 0, 1.0), "bn", x)
    with torch.no_grad():
        params["gamma"][0] *= 2.5   # away from the plain net
        out, eff = nets.normalized_forward(params, "bn", x)
        torch.testing.assert_close(nets.forward(eff, x), out)


def test_small_steps_keep_plain_gd_balanced_and_wn_gains_equal():
    X, y = linear.separable_blobs(20, 3, 0.3, np.random.default_rng(0))
    t = pd.DataFrame(nets.train_normalized(X, y, [3, 6, 6, 1], "plain", 300, 0.02))
    m = T.balance_measurements(t.assign(**{f"sq_norm_{k}": t[f"sq_w_{k}"] for k in (1, 2, 3)}), 3)
    assert m["drift"] <= TOL.balance_tol * max(m["growth"]) and max(m["growth"]) > 0
    wn = nets.train_normalized(X, y, [3, 6, 6, 1], "wn", 300, 0.02)[-1]
    assert wn["sq_g_1"] == pytest.approx(wn["sq_g_2"], rel=1e-9) == pytest.approx(wn["sq_g_3"], rel=1e-9)


# --- claims on measurements ----------------------------------------------------------------------

def pairs(*values):
    return [{"key": i, "plain": p, "method": m} for i, (p, m) in enumerate(values)]


def test_a_margin_claim_holds_only_if_the_method_beats_plain_gd_by_the_factor():
    f = TOL.margin_smaller_factor
    ok = T.margin_claim("x:a", "A", "wn", pairs((0.04, 0.04 * f * 1.01), (0.05, 0.07)), TOL, "same steps")
    assert held(ok) is True and "0.07 vs plain 0.05" in ok["measured"]
    assert T.margin_claim("x:a", "A", "wn", pairs((0.04, 0.04 * f * 0.99)), TOL, "")["verdict"] == "refuted"
    assert T.margin_claim("x:a", "A", "bn", pairs((0.04, 0.07), (0.05, 0.02)), TOL, "")["verdict"] == "refuted"   # every pair
    assert T.margin_claim("x:a", "A", "wn", pairs((-0.1, 0.01)), TOL, "")["verdict"] == "held"   # only it separates
    assert T.margin_claim("x:a", "A", "wn", pairs((0.02, -0.01)), TOL, "")["verdict"] == "refuted"
    none = T.margin_claim("x:a", "A", "wn", pairs((-0.1, -0.01)), TOL, "")
    assert none["verdict"] == "inconclusive"


def measurements(start, end, growth):
    """balance_measurements-like dict: differences at init and end, growth per layer."""
    drift = float(np.abs(np.subtract(end, start)).max())
    return {"diffs_start": list(start), "diffs_end": list(end), "drift": drift, "growth": list(growth)}


def test_a_balance_claim_fails_when_one_layer_outgrows_another():
    kept = {"s0": measurements([0.0, 0.0], [0.01, -0.02], [10.0, 10.0, 10.0])}
    lost = {"s0": measurements([0.0, 0.0], [-1.7, -5.8], [10.5, 12.0, 17.4])}   # the quick CNN's kind of drift
    assert T.balance_claim("x:b", "A", kept, TOL)["verdict"] == "held"
    assert T.balance_claim("x:b", "A", lost, TOL)["verdict"] == "refuted"
    assert T.balance_claim("x:b", "A", {}, TOL)["verdict"] == "inconclusive"


def test_an_imbalance_claim_needs_an_unbalanced_start_that_stays():
    stays = {"s0": measurements([40.0, 2.7], [40.1, 2.6], [10.0, 10.0, 10.1])}
    balanced = {"s0": measurements([0.0, 0.0], [0.01, 0.0], [10.0, 10.0, 10.0])}
    evened = {"s0": measurements([40.0, 2.7], [30.0, 2.7], [5.0, 15.0, 15.0])}
    assert T.imbalance_claim("x:c", "A", stays, 4.0, TOL)["verdict"] == "held"
    assert T.imbalance_claim("x:c", "A", balanced, 4.0, TOL)["verdict"] == "refuted"
    assert T.imbalance_claim("x:c", "A", evened, 4.0, TOL)["verdict"] == "refuted"


# --- the target ---------------------------------------------------------------------------------

DEEP = {"n": 20, "d": 3, "margin": 0.3, "hidden": [6, 6], "steps": 200, "eta": 0.05, "unbalance": 2.0, "halpern_t0": 30}


def cnn_row(model, nm, sq_init, sq_final, seed=0):
    row = {"run_id": f"{model}_s{seed}", "unit": f"{model}_s{seed}", "model": model, "seed": seed, "width": 8, "N": 256,
           "lr": 0.2, "steps": 400, "n_params": 3000, "unbalance": 4.0 if model == "hcnnu" else 1.0,
           "normalized_margin_init": -0.2, "normalized_margin_final": nm, "train_err_init": 0.9, "train_err_final": 0.0,
           "train_loss_init": 2.3, "train_loss_final": 0.01, "unit_margin_init": -0.5, "unit_margin_final": 2.5 * nm}
    for k, (a, b) in enumerate(zip(sq_init, sq_final), 1):
        row[f"sq_w{k}_init"], row[f"sq_w{k}_final"] = a, b
    return row


def cnn_rows(wn=0.06, bn=0.05, plain_final=(12.9, 12.9, 12.9), unbalanced_final=(56.4, 12.9, 10.18)):
    return pd.DataFrame([cnn_row("hcnn", 0.04, (2.9, 2.9, 2.9), plain_final),
                         cnn_row("hcnnu", 0.03, (46.4, 2.9, 0.18), unbalanced_final),
                         cnn_row("hcnnwn", wn, (2.9, 2.9, 2.9), (3.1, 3.5, 5.0)),
                         cnn_row("hcnnbn", bn, (2.9, 2.9, 2.9), (3.0, 3.2, 10.0))])


def replayed(rows, losses=None):
    """Each CNN row's replayed trajectory as its analysis keeps it: init and final step only,
    ending at ``losses[model]`` (default: its final training loss)."""
    losses = losses or {}
    return {r["unit"]: {"replay_step": np.array([0, r["steps"]]),
                        "replay_loss": np.array([r["train_loss_init"], losses.get(r["model"], r["train_loss_final"])]),
                        "replay_err": np.array([r["train_err_init"], r["train_err_final"]]),
                        "replay_normalized_margin": np.array([r["normalized_margin_init"], r["normalized_margin_final"]]),
                        "replay_unit_margin": np.array([r["unit_margin_init"], r["unit_margin_final"]])}
            for _, r in rows.iterrows()}


def build(rows, arrays=None):
    out = get(TID).build(Inputs(TID, {"synthetic": DEEP}, TOL, runs=None, requested="cifar10", used="cifar10",
                                analyses=rows, arrays=replayed(rows) if arrays is None else arrays))
    return {r["id"].split(":")[1]: r for r in out.claims}, out


def test_the_cnn_claims_read_the_analysis_rows():
    claims, out = build(cnn_rows())
    assert [k for k in claims] == ["cnn-wn-margin", "cnn-bn-margin", "cnn-balance-kept", "cnn-imbalance-kept",
                                   "deep-wn-margin", "deep-bn-margin", "deep-balance-kept", "deep-imbalance-kept",
                                   "deep-square-wn-margin", "deep-square-nmgd-min-norm"]
    assert {k: held(claims[k]) for k in list(claims)[:4]} == {"cnn-wn-margin": True, "cnn-bn-margin": True,
                                                             "cnn-balance-kept": True, "cnn-imbalance-kept": True}
    assert set(out.table["setting"]) == {"cnn", "deep", "deep-square"} and len(out.table) == 4 + 6 + 6
    broken, _ = build(cnn_rows(wn=0.041, bn=0.01, plain_final=(10.5, 12.0, 17.4), unbalanced_final=(30.0, 13.3, 17.0)))
    assert not any(held(broken[k]) for k in ("cnn-wn-margin", "cnn-bn-margin", "cnn-balance-kept", "cnn-imbalance-kept"))


def test_the_deep_claims_fail_on_a_run_that_breaks_them(monkeypatch):
    claims, _ = build(cnn_rows())
    assert held(claims["deep-balance-kept"]) is True and held(claims["deep-imbalance-kept"]) is True
    real = nets.train_normalized

    def skewed(X, y, widths, method, steps, eta, seed=0, unbalance=1.0, points=80, **kw):
        rows = real(X, y, widths, method, steps, eta, seed, unbalance, points, **kw)
        for r in rows:   # a plain GD whose first layer outgrows the others, and no margin for WN
            if method == "plain":
                r["sq_w_1"] += 0.5 * r["step"]
            if method == "wn":
                r["normalized_margin"] = -1.0
        return rows

    monkeypatch.setattr(nets, "train_normalized", skewed)
    claims, _ = build(cnn_rows())
    assert not any(held(claims[k]) for k in ("deep-balance-kept", "deep-imbalance-kept", "deep-wn-margin"))


def test_the_target_builds_from_trained_nets(tiny, tmp_path):
    """The four families by full-batch GD (momentum 0, so on the packed path: see the report)
    on the tiny set, analysed and built through report.build."""
    target, tables, metrics, arrays = get(TID), [], [], {}
    for family in T.CNN.values():
        s = spec(family)
        result = train_packed([s], tiny, options=PackOptions(compile=False))[0]
        folder = tmp_path / "runs" / s.run_id
        folder.mkdir(parents=True)
        write_csv(folder / "metrics.csv", pd.DataFrame(result.rows))
        save_torch(folder / "model.pt", {"spec": s.to_dict(), "state_dict": result.state_dict})
        analysis = target.analyze([load(folder, tiny)], {}, 0)
        tables.append(analysis.table.assign(unit=s.run_id))
        arrays[s.run_id] = analysis.arrays
        metrics.append(pd.DataFrame(result.rows))
    analyses = pd.concat(tables, ignore_index=True)
    final = pd.concat(metrics).query("final")
    # The analysis sees what training saw (one batch of the whole subset: the BN statistics of training too).
    assert np.allclose(analyses["train_loss_final"], final["train_loss"], rtol=1e-4)
    # The single-run engine's replay of each packed run is that run: its loss at every evaluation, its last net.
    assert (analyses["replay_gap"] < 1e-4).all()
    for unit, a in arrays.items():
        row = analyses.set_index("unit").loc[unit]
        assert list(a["replay_step"]) == list(range(16))
        assert a["replay_loss"][-1] == pytest.approx(row["train_loss_final"], rel=1e-4)
        assert a["replay_unit_margin"][-1] == pytest.approx(row["unit_margin_final"], rel=1e-3, abs=1e-6)
    # The init it rebuilds is the run's: balanced, equal norms for hcnn.
    plain = analyses[analyses["model"] == "hcnn"].iloc[0]
    assert plain["sq_w1_init"] == pytest.approx(plain["sq_w3_init"])
    inputs = Inputs(TID, {"synthetic": DEEP}, TOL, runs=pd.concat(metrics), requested="tiny", used="tiny",
                    analyses=analyses, arrays=arrays)
    (tmp_path / "out").mkdir()
    rows = report.build(target, inputs, tmp_path / "out", config={})
    assert len(rows) == 10 and rows["id"].str.startswith(f"{TID}:").all()
    for name in report.OUTPUTS.values():
        assert (tmp_path / "out" / name).exists(), name


def test_deep_margins_are_compared_at_matched_training_loss():
    """Plain GD ends at loss 0.1, WN already reaches 0.1 at step 10 and goes on to 0.01:
    WN's margin is read at step 10, where its loss first matches plain GD's last."""
    traj = pd.DataFrame([
        {"init": "balanced", "method": "plain", "step": s, "loss": l, "normalized_margin": m}
        for s, l, m in [(0, 1.0, -0.1), (10, 0.5, 0.01), (100, 0.1, 0.05)]] + [
        {"init": "balanced", "method": "wn", "step": s, "loss": l, "normalized_margin": m}
        for s, l, m in [(0, 1.0, -0.1), (10, 0.1, 0.04), (100, 0.01, 0.2)]])
    matched = T.at_matched_loss(traj).set_index("method")
    assert matched.loc["wn", "step"] == 10 and matched.loc["plain", "step"] == 100
    assert (matched["matched_loss"] == 0.1).all() and matched.loc["wn", "normalized_margin"] == 0.04


# --- issue 19: BN's margin under its own normalization, matched loss in A, the square loss in B ---

def with_bn_affine(model, seed=1):
    """The model with BN scales and shifts away from their init (1 and 0), so that BN's
    effective bias beta_c - gamma_c mu_c / sigma_c is not trivially what the init makes it."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + 1.5 * torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    return model


def canonical_forward(units, x):
    h = x.double()
    for W, b in units:
        h = torch.relu(F.conv2d(h, W, b, stride=NZ.STRIDE)) if W.dim() == 4 else F.linear(h.flatten(1), W, b)
    return h


@pytest.mark.parametrize("family", list(NZ.BUILDERS))
def test_unit_normalization_keeps_the_function_with_every_hidden_unit_of_norm_one(batch, family):
    x, _ = batch
    model = with_bn_affine(built(family))
    units = NZ.unit_normalized(NZ.affine_pass(model, x)[0])
    torch.testing.assert_close(canonical_forward(units, x), model(x).double(), rtol=1e-5, atol=1e-5)
    for W, b in units[:-1]:
        torch.testing.assert_close(torch.sqrt((W.flatten(1) ** 2).sum(1) + b ** 2), torch.ones(len(b), dtype=W.dtype))
    if family == "hcnnbn":   # the BN bias is counted: a net with its shifts is not its net without them
        assert any(float(b.abs().max()) > 0.1 for _, b in NZ.affine_pass(model, x)[0])


def test_the_unit_margin_is_invariant_to_the_rescalings_that_keep_the_function(batch):
    x, y = batch
    plain, unbalanced = built("hcnn"), built("hcnnu")
    assert NZ.normalized_margin(plain, x, y)["unit_margin"] == pytest.approx(
        NZ.normalized_margin(unbalanced, x, y)["unit_margin"], rel=1e-5)
    bn = with_bn_affine(built("hcnnbn"))
    before = NZ.normalized_margin(bn, x, y)
    first = [m for m in bn if isinstance(m, torch.nn.BatchNorm2d)][0]
    with torch.no_grad():   # (gamma_1, beta_1) x 3 scales layer 1's output; BN 2 divides it out
        first.weight.mul_(3.0)
        first.bias.mul_(3.0)
    after = NZ.normalized_margin(bn, x, y)
    assert after["margin"] == pytest.approx(before["margin"], rel=1e-4)
    assert after["unit_margin"] == pytest.approx(before["unit_margin"], rel=1e-4)


def trajectory_arrays(steps, losses, margins):
    return {"replay_step": np.array(steps), "replay_loss": np.array(losses), "replay_err": np.zeros(len(steps)),
            "replay_normalized_margin": np.array(margins), "replay_unit_margin": 2 * np.array(margins)}


def test_cnn_margins_are_read_at_matched_training_loss():
    """Plain GD ends at loss 0.05; WN reaches 0.05 at step 200 (margin 0.03) and goes on to
    0.01 (margin 0.09): the WN claim reads 0.03 against plain's 0.04 and fails, where the
    same steps would have read 0.09."""
    rows = cnn_rows()
    arrays = replayed(rows)
    units = dict(zip(rows["model"], rows["unit"]))
    arrays[units["hcnn"]] = trajectory_arrays([0, 200, 400], [2.3, 0.2, 0.05], [-0.2, 0.01, 0.04])
    arrays[units["hcnnwn"]] = trajectory_arrays([0, 100, 200, 400], [2.3, 0.1, 0.05, 0.01], [-0.2, 0.02, 0.03, 0.09])
    claims, _ = build(rows, arrays)
    wn = claims["cnn-wn-margin"]
    assert wn["verdict"] == "refuted" and "0.03 vs plain 0.04" in wn["measured"]
    assert "loss 0.05 at steps 400 (plain) and 200 (weight norm)" in wn["detail"] + wn["claim"]
    # BN's claim reads the per-unit margin: both nets' unit_margin (2x their margins here).
    bn = claims["cnn-bn-margin"]
    assert "batch norm 0.125 vs plain 0.08" in bn["measured"]
    with pytest.raises(ValueError, match="replayed trajectory"):
        build(rows, {})


def square_traj(nmgd_norm=4.0, wn_margin=0.06, level=0.01, err=0.0):
    """Deep-net square-loss records: every net ends at ``level``; plain's sum |W_k|^2 is 10,
    its normalized margin 0.04."""
    rows = []
    for init in INITS_:
        for method, sq, nm in (("plain", 10.0, 0.04), ("wn", 10.0, wn_margin), ("nmgd", nmgd_norm, 0.1)):
            rows += [{"init": init, "method": method, "step": 0, "loss": 1.0, "train_err": 0.5, "sq_norm": 5.0,
                      "normalized_margin": -0.1},
                     {"init": init, "method": method, "step": 100, "loss": level, "train_err": err, "sq_norm": sq,
                      "normalized_margin": nm}]
    return pd.DataFrame(rows)


INITS_ = ("balanced", "unbalanced")


def test_the_nmgd_claim_holds_on_a_smaller_norm_near_zero_loss():
    f = TOL.norm_larger_factor
    assert T.square_nmgd_claim(square_traj(nmgd_norm=10.0 / f / 1.01), TOL)["verdict"] == "held"
    assert T.square_nmgd_claim(square_traj(nmgd_norm=10.0 / f * 1.01), TOL)["verdict"] == "refuted"
    far = T.square_nmgd_claim(square_traj(level=TOL.square_fit_loss * 2), TOL)
    assert far["verdict"] == "inconclusive" and far["reason"] == C.OUT_OF_REGIME
    assert T.square_nmgd_claim(square_traj(err=0.05), TOL)["reason"] == C.OUT_OF_REGIME
    assert T.square_nmgd_claim(square_traj().query("method != 'nmgd'"), TOL)["reason"] == C.UNTESTABLE


def test_the_square_wn_claim_reads_margins_near_zero_loss():
    f = TOL.margin_smaller_factor
    assert T.square_wn_claim(square_traj(wn_margin=0.04 * f * 1.01), TOL)["verdict"] == "held"
    assert T.square_wn_claim(square_traj(wn_margin=0.04), TOL)["verdict"] == "refuted"
    far = T.square_wn_claim(square_traj(level=TOL.square_fit_loss * 2), TOL)
    assert far["verdict"] == "inconclusive" and far["reason"] == C.OUT_OF_REGIME


def test_nmgd_is_a_gd_step_shrunk_by_the_halpern_weight():
    X, y = linear.separable_blobs(20, 3, 0.3, np.random.default_rng(0))
    plain = nets.train_normalized(X, y, [3, 6, 6, 1], "plain", 1, 0.05, loss="square", points=1)
    nmgd = nets.train_normalized(X, y, [3, 6, 6, 1], "nmgd", 1, 0.05, loss="square", points=1, halpern_t0=4)
    start, step = plain[0], plain[-1]
    assert nmgd[0]["loss"] == start["loss"] == pytest.approx(start["loss"])
    shrink = 1 - nets.halpern_alpha(0, 4)   # 3/4 on every weight
    for k in (1, 2, 3):
        assert nmgd[-1][f"sq_w_{k}"] == pytest.approx(shrink ** 2 * step[f"sq_w_{k}"])
    with pytest.raises(ValueError):
        nets.train_normalized(X, y, [3, 6, 6, 1], "nmgd", 1, 0.05, loss="square")
    with pytest.raises(ValueError):
        nets.train_normalized(X, y, [3, 6, 6, 1], "plain", 1, 0.05, loss="hinge")


def test_the_deep_nets_unit_readout_norm_ignores_rescalings_that_keep_the_function():
    weights = [W.detach() for W in nets.relu_net([3, 6, 6, 1], 0, 1.0)]
    base = nets.unit_readout_norm(weights)
    moved = [W.clone() for W in weights]
    moved[0][2] *= 3.0          # unit 2 of layer 1 x 3 ...
    moved[1][:, 2] /= 3.0       # ... and its outgoing weights / 3: the same function
    moved[2] *= 0.5             # the read-out's scale is the net's
    assert nets.unit_readout_norm(moved) == pytest.approx(0.5 * base)
    X, y = linear.separable_blobs(20, 3, 0.3, np.random.default_rng(0))
    starts = [nets.train_normalized(X, y, [3, 6, 6, 1], "plain", 1, 0.05, unbalance=r, points=1)[0] for r in (1.0, 2.0)]
    assert starts[0]["unit_margin"] == pytest.approx(starts[1]["unit_margin"])
