"""The curve targets (memo073 Figs 6, 13-15) on synthetic metrics rows: each claim where it
holds and where it breaks, and each build end to end through report.build."""

import pandas as pd
import pytest

from deeptheory import claims as C
from deeptheory import report
from deeptheory.targets import Inputs, get

from conftest import config_claims, held

TOL = C.Tolerances(config_claims())
EPOCHS = [10, 20, 30, 40, 50]


def run_rows(width, N, train, test, *, n_params=None, seed=0, stop="e50", noise=0.0, epochs=EPOCHS, n_test=10 ** 8):
    """Every evaluated row of one run: ``train`` and ``test`` give the error at each epoch,
    the last one final. The default test set is so large that its binomial error is nil."""
    opts = f"_sgdl{noise:g}" if noise else ""
    rid = f"fashion-mnist/allconv5_w{width}_N{N}_natural_i1_s{seed}_{stop}{opts}"
    return [{"run_id": rid, "dataset": "fashion-mnist", "model": "allconv5", "width": width,
             "n_params": n_params or 100 * width, "n_neurons": 4 * width, "N": N, "labels": "natural", "seed": seed,
             "init_scale": 1.0, "stop": stop, "noise": noise, "subset_seed": None, "n_test": n_test, "num_classes": 10, "epoch": e, "train_err": tr, "test_err": te,
             "train_loss": 2 * tr, "test_loss": 2 * te, "interpolated": tr == 0.0, "final": e == epochs[-1],
             "loss_drop_last_fifth": 0.0} for e, tr, te in zip(epochs, train, test)]


def falling_to(train_end, test_end, n=len(EPOCHS)):
    """Curves that fall linearly from 0.9 to the given final errors by the last but one
    evaluation and stay there: runs that levelled off."""
    return ([0.9 + (train_end - 0.9) * min(i, n - 2) / (n - 2) for i in range(n)],
            [0.9 + (test_end - 0.9) * min(i, n - 2) / (n - 2) for i in range(n)])


def build(tid, rows, cfg=None):
    return get(tid).build(Inputs(tid, cfg or {}, TOL, runs=pd.DataFrame(rows), requested="cifar10",
                                 used="fashion-mnist"))


def verdicts(outcome):
    return {r["id"].split(":", 1)[1]: held(r) for r in outcome.claims}  # True held, False refuted, None inconclusive


def by_id(outcome):
    return {r["id"].split(":", 1)[1]: r for r in outcome.claims}


# --- t3-curves-by-n ---------------------------------------------------------------------

def curves(final_by_n: dict, widths=(8, 16)):
    return [row for w in widths for n, (tr, te) in final_by_n.items() for row in run_rows(w, n, *falling_to(tr, te))]


CURVE_CLAIMS = [f"{m}-model/{c}" for m in ("small", "larger")
                for c in ("train-zero-at-smallest-N", "gap-large-at-smallest-N", "gap-shrinks-with-N")]


def test_curves_by_n_holds():
    out = build("t3-curves-by-n", curves({250: (0.0, 0.35), 1000: (0.0, 0.25), 4000: (0.02, 0.12)}))
    assert verdicts(out) == {**{c: True for c in CURVE_CLAIMS}, "larger-model-test-no-worse": True}
    row = by_id(out)["small-model/gap-shrinks-with-N"]
    assert "2/3 runs interpolated" in row["measured"]


def test_curves_by_n_fails():
    # The smallest N does not fit, its gap is small, and the gap grows with N.
    out = build("t3-curves-by-n", curves({250: (0.1, 0.2), 1000: (0.0, 0.3), 4000: (0.0, 0.35)}))
    assert verdicts(out) == {**{c: False for c in CURVE_CLAIMS}, "larger-model-test-no-worse": True}
    # A gap of just under gap_at_smallest_n at an interpolating smallest N is not "large".
    out = build("t3-curves-by-n", curves({250: (0.0, TOL.gap_at_smallest_n - 0.01), 1000: (0.0, 0.1)}))
    assert verdicts(out)["small-model/gap-large-at-smallest-N"] is False
    assert verdicts(out)["small-model/train-zero-at-smallest-N"] is True


def test_the_larger_model_is_no_worse_than_the_small_one():
    """Fig 14 against Fig 13: refuted when the larger model tests worse by 0.1 at one N;
    within noise when by 0.02 on 1,000 test images (se of the difference 0.02)."""
    small = {250: (0.0, 0.35), 1000: (0.0, 0.25)}
    worse = curves(small, widths=(8,)) + curves({250: (0.0, 0.45), 1000: (0.0, 0.25)}, widths=(16,))
    assert verdicts(build("t3-curves-by-n", worse))["larger-model-test-no-worse"] is False
    rows = ([r for w in (8,) for n, (tr, te) in small.items() for r in run_rows(w, n, *falling_to(tr, te), n_test=1000)]
            + [r for n, (tr, te) in {250: (0.0, 0.37), 1000: (0.0, 0.25)}.items()
               for r in run_rows(16, n, *falling_to(tr, te), n_test=1000)])
    row = by_id(build("t3-curves-by-n", rows))["larger-model-test-no-worse"]
    assert (row["verdict"], row["reason"]) == ("inconclusive", C.WITHIN_NOISE)


def test_curves_by_n_one_width_or_one_n_is_not_testable():
    out = by_id(build("t3-curves-by-n", curves({250: (0.0, 0.35), 1000: (0.0, 0.25)}, widths=(8,))))
    for c in ("train-zero-at-smallest-N", "gap-large-at-smallest-N", "gap-shrinks-with-N"):
        assert out[f"larger-model/{c}"]["verdict"] == "inconclusive"
    assert held(out["small-model/gap-shrinks-with-N"]) is True
    one_n = by_id(build("t3-curves-by-n", curves({250: (0.0, 0.35)})))["small-model/gap-shrinks-with-N"]
    assert one_n["verdict"] == "inconclusive"


# --- t3-gen-vs-w ------------------------------------------------------------------------

W_GRID = {2: 500, 4: 1200, 8: 3300, 16: 10000}


def gen_rows(gaps_by_n: dict, train=0.0):
    """Final rows (one evaluation, epoch 30) with the given gap at each width, per N."""
    return [row for n, gaps in gaps_by_n.items() for (w, W), g in zip(W_GRID.items(), gaps)
            for row in run_rows(w, n, [train], [train + g], n_params=W, stop="e30", epochs=[30])]


def test_gen_vs_w_holds():
    out = build("t3-gen-vs-w", gen_rows({500: [0.30, 0.31, 0.28, 0.27], 2000: [0.15, 0.14, 0.14, 0.12]}))
    assert verdicts(out) == {"gap-no-rise-with-W": True, "gap-no-rise-past-N": True, "test-no-rise-with-W": True}


def test_gen_vs_w_fails_at_one_n_and_names_it():
    # N = 500 is flat; at N = 2,000 the gap rises from W = 3,300 (past N) to 10,000.
    out = build("t3-gen-vs-w", gen_rows({500: [0.30, 0.31, 0.28, 0.27], 2000: [0.15, 0.14, 0.14, 0.20]}))
    assert verdicts(out) == {"gap-no-rise-with-W": False, "gap-no-rise-past-N": False, "test-no-rise-with-W": False}
    measured = by_id(out)["gap-no-rise-with-W"]["measured"]
    assert "+0.060 at N = 2000, from W = 3,300 to W = 10,000" in measured


def test_gen_vs_w_rise_below_n_breaks_only_the_whole_grid_reading():
    # At N = 2,000 the gap rises from W = 500 to 1,200, both below N; from the last W < N on it falls.
    out = build("t3-gen-vs-w", gen_rows({500: [0.30, 0.31, 0.28, 0.27], 2000: [0.05, 0.20, 0.18, 0.17]}))
    assert verdicts(out) == {"gap-no-rise-with-W": False, "gap-no-rise-past-N": True, "test-no-rise-with-W": False}


def test_gen_vs_w_reads_the_test_error_apart_from_the_gap_and_leaves_out_nets_that_did_not_train():
    # The gap stays flat while both errors rise by 0.1 at the largest W: generalization is hurt.
    rows = [r for n, trains in {500: [0.0, 0.0, 0.0, 0.1], 2000: [0.0, 0.0, 0.0, 0.0]}.items()
            for (w, W), tr in zip(W_GRID.items(), trains)
            for r in run_rows(w, n, [tr], [tr + 0.2], n_params=W, stop="e30", epochs=[30])]
    assert verdicts(build("t3-gen-vs-w", rows)) == {"gap-no-rise-with-W": True, "gap-no-rise-past-N": True,
                                                    "test-no-rise-with-W": False}
    # The smallest net never left ln(10): its gap (0.0 here) is no point of the curve.
    rows = gen_rows({500: [0.0, 0.31, 0.28, 0.27], 2000: [0.15, 0.14, 0.14, 0.12]})
    for r in rows:
        if r["n_params"] == 500 and r["N"] == 500:
            r.update(train_err=0.9, test_err=0.9, train_loss=2.3026)
    out = by_id(build("t3-gen-vs-w", rows))
    assert held(out["gap-no-rise-with-W"]) is True and "left out as not trained" in out["gap-no-rise-with-W"]["detail"]


def test_gen_vs_w_one_width_is_not_testable():
    rows = [r for r in gen_rows({500: [0.3, 0.3, 0.3, 0.3]}) if r["width"] == 2]
    out = by_id(build("t3-gen-vs-w", rows))
    assert all(r["verdict"] == "inconclusive" for r in out.values())


# --- t3-sgdl ----------------------------------------------------------------------------

SGD_TEST = [0.60, 0.40, 0.30, 0.26, 0.25]
SGD_TRAIN = [0.55, 0.30, 0.15, 0.08, 0.05]
SGDL_EPOCHS = [10, 30, 50, 70, 100]
SGDL_CLAIMS = ("final-test-tracks-sgd", "test-curve-tracks-sgd", "sgdl-better-validation")


def sgdl_rows(sgdl_test, noise=0.001):
    return (run_rows(8, 2000, SGD_TRAIN, SGD_TEST, stop="e100", epochs=SGDL_EPOCHS)
            + run_rows(8, 2000, SGD_TRAIN, sgdl_test, stop="e100", noise=noise, epochs=SGDL_EPOCHS))


def test_sgdl_holds():
    # A difference at epoch 10, before sgdl_curve_from of the budget, does not count.
    assert SGDL_EPOCHS[0] < TOL.sgdl_curve_from * SGDL_EPOCHS[-1] <= SGDL_EPOCHS[1]
    out = build("t3-sgdl", sgdl_rows([0.90, 0.41, 0.29, 0.25, 0.24]), {"stop": "e100"})
    assert verdicts(out) == {c: True for c in SGDL_CLAIMS}
    table = out.table.set_index("optimizer")
    assert table.loc["SGDL", "test_err_minus_sgd"] == pytest.approx(-0.01)
    assert "shared epochs 30, 50, 70, 100" in by_id(out)["test-curve-tracks-sgd"]["measured"]


def test_sgdl_fails():
    # Final test error far above SGD's, and a curve apart by 0.1 mid-training.
    out = build("t3-sgdl", sgdl_rows([0.60, 0.50, 0.30, 0.30, 0.25 + TOL.sgdl_final_tol + 0.01]))
    assert verdicts(out) == {c: False for c in SGDL_CLAIMS}
    # Final errors equal, curves apart mid-training: only the curve claim breaks.
    out = build("t3-sgdl", sgdl_rows([0.60, 0.40 + TOL.sgdl_curve_tol + 0.02, 0.30, 0.26, 0.25]))
    # (equal final errors: SGDL is neither better nor worse)
    assert verdicts(out) == {"final-test-tracks-sgd": True, "test-curve-tracks-sgd": False,
                             "sgdl-better-validation": None}


def test_sgdl_differences_within_binomial_noise_are_inconclusive():
    """On 1,000 test images two final errors of 0.25 and 0.24 differ by 0.7 standard errors
    of their difference: "SGDL is better" is inconclusive, and so is "tracks SGD within
    0.03" (the noise alone spans 0.05); 0.25 against 0.40 refutes both."""
    def rows(test):
        return (run_rows(8, 2000, SGD_TRAIN, SGD_TEST, stop="e100", epochs=SGDL_EPOCHS, n_test=1000)
                + run_rows(8, 2000, SGD_TRAIN, test, stop="e100", noise=0.001, epochs=SGDL_EPOCHS, n_test=1000))
    out = by_id(build("t3-sgdl", rows([0.90, 0.41, 0.29, 0.25, 0.24]), {"stop": "e100"}))
    for c in ("final-test-tracks-sgd", "sgdl-better-validation"):
        assert (out[c]["verdict"], out[c]["reason"]) == ("inconclusive", C.WITHIN_NOISE)
    out = by_id(build("t3-sgdl", rows([0.90, 0.41, 0.35, 0.38, 0.40]), {"stop": "e100"}))
    assert held(out["final-test-tracks-sgd"]) is False and held(out["sgdl-better-validation"]) is False


def test_sgdl_needs_both_optimizers():
    sgd_only = run_rows(8, 2000, SGD_TRAIN, SGD_TEST) + run_rows(8, 2000, SGD_TRAIN, SGD_TEST, seed=1)
    sgdl_unpaired = run_rows(8, 2000, SGD_TRAIN, SGD_TEST) + run_rows(8, 4000, SGD_TRAIN, SGD_TEST, noise=0.001)
    for rows in (sgd_only, sgdl_unpaired):
        out = by_id(build("t3-sgdl", rows))
        assert all(r["verdict"] == "inconclusive" for r in out.values())


# --- end to end -------------------------------------------------------------------------

@pytest.mark.parametrize("tid,rows", [
    ("t3-curves-by-n", curves({250: (0.0, 0.35), 1000: (0.0, 0.25)})),
    ("t3-gen-vs-w", gen_rows({500: [0.30, 0.31, 0.28, 0.27], 2000: [0.15, 0.14, 0.14, 0.12]})),
    ("t3-sgdl", sgdl_rows([0.60, 0.41, 0.29, 0.25, 0.24])),
])
def test_builds_write_figure_table_and_claims(tmp_path, tid, rows):
    inputs = Inputs(tid, {"stop": "e50"}, TOL, runs=pd.DataFrame(rows), requested="cifar10", used="fashion-mnist")
    claims = report.build(get(tid), inputs, tmp_path, config={})
    for name in ("figure.png", "figure.pdf", "table.csv", "claims.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert list(pd.read_csv(tmp_path / "claims.csv")["id"]) == list(claims["id"])
    assert (claims["verdict"] == "held").all()
