"""slides-locality: the locally connected layer, the three families, their init and packing,
and the claims on rows where they hold, where they break and where they cannot be read."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from deeptheory import claims as C
from deeptheory import models, report
from deeptheory.models import locality
from deeptheory.engine import train_run
from deeptheory.models.locality import LocallyConnected2d
from deeptheory.packed import PackOptions, train_packed
from deeptheory.spec import RunSpec
from deeptheory.targets import Inputs, get
from deeptheory.targets import locality as T

from conftest import config_claims, train_settings, held

TOL = C.Tolerances(config_claims())
TID = "slides-locality"


# --- the locally connected layer ---------------------------------------------------------------

@pytest.mark.parametrize("c_in, c_out, size, k, stride, pad", [(1, 4, 28, 3, 2, 1), (3, 5, 9, 3, 1, 0),
                                                               (2, 3, 11, 5, 2, 2)])
def test_a_local_layer_with_one_kernel_at_every_position_is_that_convolution(c_in, c_out, size, k, stride, pad):
    conv = torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad)
    local = LocallyConnected2d(c_in, c_out, (size, size), k, stride=stride, padding=pad)
    positions = local.out_size[0] * local.out_size[1]
    with torch.no_grad():
        local.weight.copy_(conv.weight.reshape(c_out, -1).expand(positions, -1, -1))
        local.bias.copy_(conv.bias.expand(positions, -1))
    x = torch.randn(4, c_in, size, size)
    torch.testing.assert_close(local(x), conv(x), rtol=1e-5, atol=1e-5)


def test_a_local_layer_unshares_its_positions():
    """Changing the filter of one output position changes that position's outputs only."""
    local = LocallyConnected2d(2, 3, (8, 8), 3, stride=2, padding=1)
    models.init_params(torch.nn.Sequential(local), 0)
    x = torch.randn(2, 2, 8, 8)
    before = local(x).detach()
    with torch.no_grad():
        local.weight[5] += 1.0
    changed = (local(x).detach() - before).abs().sum(dim=(0, 1)).flatten() > 0
    assert changed.tolist() == [p == 5 for p in range(16)]


def test_local_layer_shapes_and_fan_in():
    local = LocallyConnected2d(3, 7, (32, 32), 3, stride=2, padding=1)
    assert local.out_size == (16, 16)
    assert local.weight.shape == (256, 7, 27) and local.bias.shape == (256, 7) and local.fan_in == 27
    assert local(torch.zeros(5, 3, 32, 32)).shape == (5, 7, 16, 16)


# --- the three families ------------------------------------------------------------------------

# W as the module docstring writes it, with 10 classes.
FORMULAS = {(1, 28): {"convnet": (18, 172), "localnet": (585, 2185), "fcnet": (2, 797)},
            (3, 32): {"convnet": (18, 190), "localnet": (720, 7408), "fcnet": (2, 3085)}}


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_families_have_the_documented_parameter_counts_and_map_images_to_scores(shape):
    for family, (a, b) in FORMULAS[shape[0], shape[1]].items():
        for w in (1, 3, 8):
            net = models.build(family, w, shape, 10)
            assert models.n_params(net) == a * w * w + b * w + 10, (family, w)
        assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_conv_and_local_nets_share_depth_kernels_and_strides():
    conv, local = models.build("convnet", 4, (1, 28, 28), 10), models.build("localnet", 4, (1, 28, 28), 10)
    convs = [m for m in conv.modules() if isinstance(m, torch.nn.Conv2d)]
    locals_ = [m for m in local.modules() if isinstance(m, LocallyConnected2d)]
    assert len(convs) == len(locals_) == locality.DEPTH
    for c, lc in zip(convs, locals_):
        assert (c.kernel_size[0], c.stride[0], c.padding[0]) == (lc.kernel_size, lc.stride, lc.padding)
        assert c.weight.reshape(c.out_channels, -1).shape == lc.weight.shape[1:]
    fc = models.build("fcnet", 4, (1, 28, 28), 10)
    assert sum(isinstance(m, torch.nn.Linear) for m in fc.modules()) == locality.DEPTH + 1
    assert models.n_neurons("localnet", 4) == models.n_neurons("convnet", 4) == 12


def test_init_draws_the_local_filters_within_one_over_root_fan_in():
    a, b = models.build("localnet", 4, (1, 28, 28), 10), models.build("localnet", 4, (1, 28, 28), 10)
    models.init_params(a, 3)
    models.init_params(b, 3, scale=2.0)
    for la, lb in zip(*[[m for m in n.modules() if isinstance(m, LocallyConnected2d)] for n in (a, b)]):
        bound = 1 / math.sqrt(la.fan_in)
        for p in (la.weight.detach(), la.bias.detach()):
            assert float(p.abs().max()) <= bound and float(p.abs().max()) > 0.8 * bound
        torch.testing.assert_close(lb.weight, 2 * la.weight)


def test_the_local_net_packs_with_its_single_run_numbers(tiny):
    runs = [RunSpec(dataset="tiny", model="localnet", width=2, N=n, seed=s, eval_every=1, stop_at_zero=False,
                    **train_settings(lr=0.05, max_epochs=3, batch_size=16)) for s, n in [(0, 48), (1, 40)]]
    packed = train_packed(runs, tiny, options=PackOptions(compile=False))
    for s, b in zip(runs, packed):
        a = train_run(s, tiny)
        np.testing.assert_allclose([r["train_loss"] for r in b.rows], [r["train_loss"] for r in a.rows], rtol=1e-4)
        for k in a.state_dict:
            torch.testing.assert_close(b.state_dict[k], a.state_dict[k], rtol=1e-4, atol=1e-5)


# --- claims on rows ----------------------------------------------------------------------------

# W per width of each family (the quick grid's values on 28x28x1 inputs).
W = {"convnet": {8: 2538, 16: 7370, 32: 23946}, "localnet": {2: 6720, 3: 11830, 4: 18110},
     "fcnet": {8: 6514, 16: 13274, 32: 27562}}


def rows(errors: dict, seeds=(0,), n_test=10 ** 8) -> pd.DataFrame:
    """Final metrics rows: errors {family: [test error at each width of W]}; by default on a
    test set so large that its binomial error is nil."""
    out = []
    for family, errs in errors.items():
        for (width, n_params), err in zip(W[family].items(), errs):
            for s in seeds:
                out.append({"run_id": f"{family}_w{width}_s{s}", "model": family, "width": width, "n_params": n_params,
                            "N": 500, "seed": s, "epoch": 80, "final": True, "train_err": 0.0, "interpolated": True,
                            "test_err": err + 0.002 * s, "n_test": n_test, "num_classes": 10})
    return pd.DataFrame(out)


def build(frame: pd.DataFrame, cfg=None):
    out = get(TID).build(Inputs(TID, cfg or {"stop": "zero"}, TOL, runs=frame, requested="cifar10", used="cifar10"))
    return {r["id"].split(":")[1]: r for r in out.claims}, out


# Locality gives the gain: fc far above lc, lc a little above conv.
HOLDS = {"convnet": [0.30, 0.25, 0.22], "localnet": [0.28, 0.26, 0.24], "fcnet": [0.40, 0.37, 0.34]}
# Sharing gives the gain: lc as bad as fc.
SHARING = {"convnet": [0.30, 0.25, 0.22], "localnet": [0.39, 0.36, 0.34], "fcnet": [0.40, 0.37, 0.34]}
# No gain from locality, and conv even worse: the first claim alone would hold.
NO_GAIN = {"convnet": [0.55, 0.52, 0.50], "localnet": [0.42, 0.41, 0.40], "fcnet": [0.40, 0.37, 0.34]}


def test_both_claims_hold_where_locality_gives_most_of_the_gain():
    claims, out = build(rows(HOLDS, seeds=(0, 1)))
    assert {k: held(r) for k, r in claims.items()} == {"locality-not-sharing": True, "locality-gains": True}
    measured = claims["locality-not-sharing"]["measured"]
    assert "overlap W = 6,720 to 18,110" in measured and "best test error: convnet 0.221 (width 32" in measured
    assert len(out.table) == 9 and set(out.table["runs"]) == {2}


def test_the_claim_fails_where_weight_sharing_gives_most_of_the_gain():
    claims, _ = build(rows(SHARING))
    assert held(claims["locality-not-sharing"]) is False and held(claims["locality-gains"]) is True


def test_no_gain_from_locality_fails_the_second_claim():
    claims, _ = build(rows(NO_GAIN))
    assert held(claims["locality-not-sharing"]) is True and held(claims["locality-gains"]) is False


def test_gaps_are_read_at_matched_parameter_count_linear_in_log_w():
    points = T.by_family(rows(HOLDS))
    m = T.matched(points)
    assert (m.lo, m.hi) == (6720, 18110)
    # Half-way in log W between localnet's first two widths its error is their mean.
    mid = math.sqrt(6720 * 11830)
    assert T.error_at(points, "lc", mid) == pytest.approx(0.27)
    assert m.at["lo"]["lc"] == pytest.approx(0.28) and m.at["hi"]["lc"] == pytest.approx(0.24)
    grid = np.logspace(np.log10(6720), np.log10(18110), T.READ_POINTS)
    assert m.mean["fc"] == pytest.approx(float(np.mean(T.error_at(points, "fc", grid))))
    assert m.gap_lc_conv < m.gap_fc_lc and m.gap_fc_lc == pytest.approx(m.mean["fc"] - m.mean["lc"])


def test_disjoint_parameter_ranges_are_not_testable():
    frame = rows(HOLDS)
    frame.loc[frame["model"] == "fcnet", "n_params"] *= 10  # fcnet now starts above every localnet W
    points = T.by_family(frame)
    assert T.matched(points) is None
    claims, _ = build(frame)
    assert all(r["reason"] == C.UNTESTABLE and "do not overlap" in r["measured"] for r in claims.values())
    assert "best test error" in claims["locality-gains"]["measured"]


def test_a_diverged_run_is_left_out_and_named():
    frame = rows(HOLDS).assign(diverged=False)
    frame.loc[(frame["model"] == "localnet") & (frame["width"] == 4), ["diverged", "test_err"]] = [True, 0.9]
    claims, out = build(frame)
    assert len(out.table) == 8 and "left out as diverged: localnet width 4" in out.setup
    assert "overlap W = 6,720 to 11,830" in claims["locality-not-sharing"]["measured"]


def test_a_missing_family_is_not_testable():
    claims, _ = build(rows({k: v for k, v in HOLDS.items() if k != "fcnet"}))
    assert all(r["reason"] == C.UNTESTABLE for r in claims.values())


def test_gaps_within_binomial_noise_are_inconclusive():
    """On 1,000 test images each family's mean error carries a standard error of about
    0.015: a gain from locality of +0.07 stands (2.5 se of the gap: 0.05), a difference of
    the gaps of +0.04 does not (2.5 se of fc - 2 lc + conv: 0.085)."""
    close = {"convnet": [0.30, 0.27, 0.25], "localnet": [0.33, 0.30, 0.28], "fcnet": [0.40, 0.37, 0.35]}
    claims, _ = build(rows(close, n_test=1000))
    assert held(claims["locality-gains"]) is True
    assert claims["locality-not-sharing"]["reason"] == C.WITHIN_NOISE


def test_the_target_builds_its_six_files(tmp_path):
    target = get(TID)
    frame = rows(HOLDS)
    inputs = Inputs(TID, {"stop": "zero"}, TOL, runs=frame, requested="cifar10", used="fashion-mnist")
    claim_rows = report.build(target, inputs, tmp_path, config={})
    assert list(claim_rows["id"]) == [f"{TID}:locality-not-sharing", f"{TID}:locality-gains"]
    for name in report.OUTPUTS.values():
        assert (tmp_path / name).exists(), name
    table = pd.read_csv(tmp_path / "table.csv")
    assert list(table["family"].unique()) == ["fcnet", "localnet", "convnet"]
    assert {"width", "n_params", "train_err", "test_err"} <= set(table.columns)
