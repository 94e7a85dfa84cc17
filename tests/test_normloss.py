"""m100-norm-loss (memo100 Fig 3): the normalized losses of a net, each claim on rows where
it holds and on rows that break it, and the target from its analyses through report.build."""

import numpy as np
import pandas as pd
import pytest
import torch

from deeptheory import claims as C
from deeptheory import models, report
from deeptheory.analyses import load
from deeptheory.analyses import normloss as NL
from deeptheory.atomic import save_torch, write_csv
from deeptheory.engine import train_run
from deeptheory.spec import RunSpec
from deeptheory.targets import Inputs, get
from deeptheory.targets.normloss import free_fit, slope_one_fit

from conftest import config_claims, train_settings
from conftest import held as held_row

TOL = C.Tolerances(config_claims())
TID = "m100-norm-loss"


# --- the normalized net --------------------------------------------------------------------

@pytest.fixture
def net(tiny):
    model = models.build("cnn3", 3, tiny.input_shape, tiny.num_classes)
    models.init_params(model, seed=0)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    return model.eval(), params, tiny.x_train[:50], tiny.y_train[:50]


def scaled(params, layer: str, factor: float, names=("weight", "bias")) -> dict:
    return {n: p * factor if n.rsplit(".", 1)[0] == layer and n.rsplit(".", 1)[1] in names else p
            for n, p in params.items()}


def test_each_layer_is_one_vector_of_unit_norm_first_weight_and_bias_jointly(net):
    _, params, _, _ = net
    assert NL.layers(params) == {"0": ["0.weight", "0.bias"], "2": ["2.weight"], "5": ["5.weight"]}
    unit = NL.normalized(params)
    assert all(abs(v - 1) < 1e-6 for v in NL.layer_norms(unit).values())
    assert float((unit["0.weight"] ** 2).sum() + (unit["0.bias"] ** 2).sum()) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("layer", ["0", "2", "5"])
def test_scaling_a_layer_by_10_leaves_the_normalized_losses_unchanged(net, layer):
    model, params, x, y = net
    big = scaled(params, layer, 10.0)
    raw, raw_big = NL.cross_entropy(model, params, x, y), NL.cross_entropy(model, big, x, y)
    norm = NL.cross_entropy(model, NL.normalized(params), x, y)
    norm_big = NL.cross_entropy(model, NL.normalized(big), x, y)
    assert raw_big[0] != pytest.approx(raw[0], rel=1e-3)   # the raw loss sees the scale ...
    assert norm_big == pytest.approx(norm, rel=1e-6)       # ... the normalized one does not
    assert raw_big[1] == raw[1]                             # nor does any prediction


def test_the_first_layer_bias_is_normalized_with_its_weight_not_alone(net):
    # Scaling the bias alone changes the direction of the first layer's (weight, bias) vector.
    model, params, x, y = net
    moved = NL.cross_entropy(model, NL.normalized(scaled(params, "0", 10.0, names=("bias",))), x, y)
    assert moved[0] != pytest.approx(NL.cross_entropy(model, NL.normalized(params), x, y)[0], rel=1e-6)


def test_the_normalized_net_is_the_raw_net_over_the_product_of_layer_norms(net):
    model, params, x, _ = net
    rho = np.prod(list(NL.layer_norms(params).values()))
    with torch.no_grad():
        unit = torch.func.functional_call(model, NL.normalized(params), (x,))
        assert torch.allclose(unit, model(x) / rho, rtol=1e-4, atol=1e-7)


# --- claims on rows ------------------------------------------------------------------------

def net_rows(train_norm, test_norm, train_raw, test_raw, labels="natural", train_err=0.0, test_err=0.3, start=0):
    return [{"run_id": f"{labels}{start + i}", "unit": f"{labels}{start + i}", "labels": labels,
             "init_scale": 0.1 * (i + 1), "seed": 0, "model": "cnn3", "width": 8, "N": 250, "n_params": 33808,
             "n_test": 1000, "num_classes": 10, "train_loss": a, "test_loss": b, "train_loss_norm": c,
             "test_loss_norm": d, "train_err": train_err, "test_err": test_err}
            for i, (c, d, a, b) in enumerate(zip(train_norm, test_norm, train_raw, test_raw))]


LN10 = float(np.log(10))
TRAIN_NORM = np.linspace(1.5, 1.85, 6)
WIGGLE = np.array([0.002, -0.001, 0.0015, -0.002, 0.001, -0.0015])   # scatter of the natural nets about their line
RAW_TRAIN = [0.006, 0.011, 0.003, 0.008, 0.005, 0.009]
RAW_TEST = [2.7, 2.2, 2.9, 1.8, 1.9, 3.1]                            # unrelated to the raw train losses


def build(natural: list, random: list):
    rows = pd.DataFrame(natural + random)
    runs = rows[["run_id", "train_err"]].assign(epoch=50, final=True)  # each net's final metrics row
    out = get(TID).build(Inputs(TID, {}, TOL, runs=runs, requested="cifar10", used="cifar10", analyses=rows))
    return {r["id"].split(":")[1]: r for r in out.claims}, out


def natural(test_norm=None, raw_test=RAW_TEST, train_err=0.0):
    test_norm = TRAIN_NORM + 0.05 + WIGGLE if test_norm is None else test_norm
    return net_rows(TRAIN_NORM, test_norm, RAW_TRAIN, raw_test, train_err=train_err)


def random_nets(test_norm=(2.33, 2.32), test_err=0.9):
    return net_rows([2.10, 2.20], test_norm, [0.006, 0.01], [12.0, 10.0], labels="random", test_err=test_err)


def held(claims) -> dict:
    """Per claim (or of one claim row): True held, False refuted, None inconclusive."""
    if "verdict" in claims:
        return held_row(claims)
    return {k: held_row(r) for k, r in claims.items()}


def test_every_claim_holds_where_memo100_fig3_says():
    claims, out = build(natural(), random_nets())
    assert held(claims) == {"normalized-slope-one": True, "raw-off-line": True, "random-off-line": True,
                            "random-at-chance": True}
    measured = claims["normalized-slope-one"]["measured"]
    assert "slope-1 fit" in measured and "free fit" in measured and "R^2" in measured and "not judged" in measured
    assert len(out.table) == 8 and out.table["kept"].all()
    assert out.table["residual_over_rmse"].abs()[out.table["labels"] == "natural"].max() < TOL.normloss_offline_k
    nat = out.table["labels"] == "natural"
    assert out.table["margin_kept_z"][nat].abs().max() < TOL.normloss_offline_k
    assert (out.table["margin_kept"][~nat] < 0).all()   # test losses above ln 10: no training margin kept


# memo100's slope-1 line: judged on the line of slope 1 fixed, not on a free fit's slope.

def test_a_slope_one_line_through_points_whose_free_slope_is_not_1_holds():
    # Points on a ray through (ln 10, ln 10) of slope 0.85 (the quick build's natural nets lie on one of slope ~0.8):
    # the slope-1 line still explains > 90% of the test losses and lies above the diagonal.
    test = LN10 - 0.85 * (LN10 - TRAIN_NORM) + WIGGLE
    claims, _ = build(natural(test_norm=test), random_nets())
    assert held(claims["normalized-slope-one"]) is True
    assert "its slope interval excludes 1" in claims["normalized-slope-one"]["measured"]


def test_a_normalized_slope_far_from_1_fails():
    claims, _ = build(natural(test_norm=0.5 * TRAIN_NORM + 1.1 + WIGGLE), random_nets())
    assert held(claims["normalized-slope-one"]) is False


def test_normalized_points_scattered_off_any_line_fail():
    noisy = TRAIN_NORM + 0.05 + np.array([0.1, -0.1, 0.12, -0.08, 0.1, -0.12])
    claims, _ = build(natural(test_norm=noisy), random_nets())
    assert held(claims["normalized-slope-one"]) is False


def test_a_slope_one_line_below_the_diagonal_fails():
    claims, _ = build(natural(test_norm=TRAIN_NORM - 0.05 + WIGGLE), random_nets())
    assert held(claims["normalized-slope-one"]) is False


def test_an_intercept_within_noise_of_0_is_inconclusive():
    claims, _ = build(natural(test_norm=TRAIN_NORM + WIGGLE), random_nets())   # WIGGLE has mean 0
    row = claims["normalized-slope-one"]
    assert held(row) is None and row["reason"] == C.WITHIN_NOISE


def test_raw_losses_on_a_line_fail_the_raw_claim():
    claims, _ = build(natural(raw_test=[2 + 100 * t for t in RAW_TRAIN]), random_nets())
    assert held(claims["raw-off-line"]) is False and held(claims["normalized-slope-one"]) is True


# Random-label nets: judged by the share of the training margin kept on test, not by a distance in nats.

def test_a_random_label_net_on_the_natural_line_fails():
    rows = random_nets()
    rows[1].update(train_loss_norm=1.70, test_loss_norm=1.75)   # on the natural nets' line, mid-range
    claims, _ = build(natural(), rows)
    assert held(claims["random-off-line"]) is False


def test_a_random_label_net_near_ln10_ln10_is_still_off_the_line():
    # Outputs 100x smaller than the others': the net lies within 0.002 nats of (ln 10, ln 10), nearer the slope-1
    # line than the natural nets' scatter of the gap, yet it keeps no training margin on test.
    rows = random_nets()
    rows[1].update(train_loss_norm=LN10 - 0.001, test_loss_norm=LN10 + 0.0001)
    claims, out = build(natural(), rows)
    assert held(claims["random-off-line"]) is True
    assert out.table["margin_kept"].iloc[-1] == pytest.approx(-0.1)


def test_natural_shares_too_scattered_to_tell_a_net_at_chance_are_inconclusive():
    # Natural nets near ln 10 with a constant gap keep from 87% to 5% of their margin: a share of 0 is inside that.
    train = np.linspace(1.9, 2.25, 6)
    rows = net_rows(train, train + 0.05 + WIGGLE, RAW_TRAIN, RAW_TEST)
    claims, _ = build(rows, random_nets())
    row = claims["random-off-line"]
    assert held(row) is None and row["reason"] == C.UNTESTABLE


def test_random_label_nets_without_a_training_margin_are_not_testable():
    claims, _ = build(natural(), [dict(r, train_loss_norm=LN10 + 0.001) for r in random_nets()])
    assert held(claims["random-off-line"]) is None


def test_a_random_label_net_above_chance_accuracy_fails():
    claims, _ = build(natural(), random_nets(test_err=0.5))
    assert held(claims["random-at-chance"]) is False


def test_too_few_fit_nets_are_not_testable():
    # Four of six natural nets did not reach train error exactly 0; no random-label net at all.
    rows = natural()
    for r in rows[2:]:
        r["train_err"] = 0.004
    claims, out = build(rows, [])
    assert all(v is None for v in held(claims).values())
    assert "2 of 6 natural-label nets kept" in claims["normalized-slope-one"]["measured"]
    assert out.table["kept"].sum() == 2


def test_fits_report_their_intervals():
    y = TRAIN_NORM + 0.05 + WIGGLE
    free, one = free_fit(TRAIN_NORM, y), slope_one_fit(TRAIN_NORM, y)
    assert free.slope_lo < free.slope < free.slope_hi and free.slope_lo < 1 < free.slope_hi
    assert free.r2_lo <= free.r2 <= free.r2_hi and free.r2 > 0.99
    assert one.intercept == pytest.approx(0.05 + WIGGLE.mean()) and one.intercept_lo < 0.05 < one.intercept_hi
    assert one.intercept_se == pytest.approx((WIGGLE.std(ddof=1)) / np.sqrt(len(WIGGLE)))


# --- nets fit to the tiny data set, through report.build -----------------------------------

def spec(labels: str, init: float) -> RunSpec:
    return RunSpec(dataset="tiny", model="cnn3", width=4, N=40, labels=labels, init_scale=init, n_test=100,
                   eval_every=5, **train_settings(lr=0.05, max_epochs=60))


def test_the_target_builds_from_its_analyses(tiny, tmp_path):
    target, tables, metrics = get(TID), [], []
    for s in [spec("natural", i) for i in (0.5, 1.0, 2.0)] + [spec("random", 1.0)]:
        result = train_run(s, tiny)
        folder = tmp_path / "runs" / s.run_id
        folder.mkdir(parents=True)
        write_csv(folder / "metrics.csv", pd.DataFrame(result.rows))
        save_torch(folder / "model.pt", {"spec": s.to_dict(), "state_dict": result.state_dict})
        run = load(folder, tiny)
        tables.append(target.analyze([run], {}, 0).table.assign(unit=s.run_id))
        metrics.append(pd.DataFrame(result.rows))
    analyses = pd.concat(tables, ignore_index=True)
    final = pd.concat(metrics).query("final")
    # The analysis sees what training saw: the same training error on the same subset and labels.
    assert np.allclose(analyses["train_err"], final["train_err"]) and np.allclose(analyses["train_loss"],
                                                                                  final["train_loss"], rtol=1e-4)
    inputs = Inputs(TID, {}, TOL, runs=pd.concat(metrics), requested="tiny", used="tiny", analyses=analyses)
    (tmp_path / "out").mkdir()
    rows = report.build(target, inputs, tmp_path / "out", config={})
    assert list(rows["id"]) == [f"{TID}:{k}" for k in ("normalized-slope-one", "raw-off-line", "random-off-line",
                                                      "random-at-chance")]
    for name in report.OUTPUTS.values():
        assert (tmp_path / "out" / name).exists(), name
    table = pd.read_csv(tmp_path / "out" / "table.csv")
    assert len(table) == 4 and table["kept"].sum() == (analyses["train_err"] == 0).sum()
