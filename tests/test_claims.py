"""Each claim computed on a small results table where it holds and on one where it fails."""

import pandas as pd
import pytest

from deeptheory import claims as C
from deeptheory.targets import Inputs, get

from conftest import config_claims

TOL = C.Tolerances(config_claims())


H, R, I = C.HELD, C.REFUTED, C.INCONCLUSIVE
EXACT = 10 ** 8  # a test set so large that its binomial error is nil: the checks read the numbers as given


def table(x: str, xs, train, test, seeds=1, jitter=0.0, falling=None, n_test=EXACT, **fixed):
    """Final rows of a sweep; ``falling`` gives each point's loss drop over its last fifth
    of epochs (default 0: every run levelled off)."""
    rows = []
    falling = falling or [0.0] * len(xs)
    for s in range(seeds):
        for i, (v, tr, te, fall) in enumerate(zip(xs, train, test, falling)):
            d = jitter * (1 if s % 2 else -1)
            rows.append({x: v, "train_err": max(tr + d, 0.0), "test_err": te + d, "interpolated": tr + d <= 0,
                         "loss_drop_last_fifth": fall,
                         "run_id": f"r{i}s{s}", "seed": s, "n_test": n_test, "num_classes": 10, "model": "allconv5",
                         "width": i + 1, "n_neurons": 4 * (i + 1), "epoch": 10, "final": True, **fixed})
    frame = pd.DataFrame(rows)
    if "n_params" not in frame:
        frame["n_params"] = fixed.get("W", 1000)
    return frame


def analyse(tid, runs):
    return get(tid).build(Inputs(tid, {}, TOL, runs=runs, requested="cifar10", used="cifar10")).claims


def verdicts(rows):
    return {r["id"].split(":")[1]: r["verdict"] for r in rows}


W = 1500
NS = [250, 500, 1000, 2000, 3000, 6000]   # N from W/6 to 4 W


def test_err_vs_n_holds():
    final = table("N", NS, [0, 0, 0, 0.05, 0.08, 0.10], [0.40, 0.33, 0.25, 0.20, 0.16, 0.14], n_params=W)
    v = verdicts(analyse("t3-err-vs-n", final))
    assert v == {"train-zero-below-W": H, "train-above-zero-from-2W": H, "test-falls": H,
                 "gap-small-at-largest-N": H}


def test_err_vs_n_fails():
    # A small-N run that does not fit, runs that fit far past W, test error that rises, a
    # large gap at the largest N.
    final = table("N", NS, [0.2, 0, 0, 0.0, 0.0, 0.0], [0.30, 0.33, 0.35, 0.40, 0.45, 0.45], n_params=W)
    v = verdicts(analyse("t3-err-vs-n", final))
    assert v == {"train-zero-below-W": R, "train-above-zero-from-2W": R, "test-falls": R,
                 "gap-small-at-largest-N": R}


def test_runs_still_falling_at_the_cap_do_not_count_as_unable_to_fit():
    # Past 2 W the only runs are still falling fast: "does not fit" is not testable.
    final = table("N", NS, [0, 0, 0, 0.05, 0.30, 0.40], [0.40, 0.33, 0.25, 0.20, 0.30, 0.40], n_params=W,
                  falling=[0, 0, 0, 0, 0.2, 0.3])
    row = {r["id"]: r for r in analyse("t3-err-vs-n", final)}["t3-err-vs-n:train-above-zero-from-2W"]
    assert row["verdict"] == I and row["reason"] == C.NOT_CONVERGED and "2 run(s) left out" in row["detail"]
    # One of them levelled off: it counts, and the claim holds on it, saying what it left out.
    final = table("N", NS, [0, 0, 0, 0.05, 0.30, 0.40], [0.40, 0.33, 0.25, 0.20, 0.30, 0.40], n_params=W,
                  falling=[0, 0, 0, 0, 0.01, 0.3])
    row = {r["id"]: r for r in analyse("t3-err-vs-n", final)}["t3-err-vs-n:train-above-zero-from-2W"]
    assert row["verdict"] == H and "1 run(s) left out" in row["detail"] and "1 converged" in row["measured"]


def test_fit_status():
    final = table("N", [1, 2, 3], [0.0, 0.2, 0.2], [0.5] * 3, falling=[0.9, 0.01, 0.2])
    assert list(C.fit_status(final, TOL)) == ["interpolated", "levelled", "not converged"]
    # a run the plateau rule stopped levelled off by that rule's reading, whatever its last fifth says
    assert list(C.fit_status(final.assign(plateaued=[False, False, True]), TOL)) == ["interpolated", "levelled",
                                                                                      "levelled"]
    final["diverged"] = [False, True, False]
    assert list(C.fit_status(final, TOL)) == ["interpolated", "diverged", "not converged"]


def test_a_diverged_run_does_not_count_as_unable_to_fit():
    """A run whose loss overflowed stopped with a high train error that says nothing about
    W: "does not fit past 2 W" leaves it out, and is not testable on it alone."""
    final = table("N", NS, [0, 0, 0, 0.05, 0.9, 0.9], [0.40, 0.33, 0.25, 0.20, 0.9, 0.9], n_params=W)
    final["diverged"] = [False] * 4 + [True, True]
    row = {r["id"]: r for r in analyse("t3-err-vs-n", final)}["t3-err-vs-n:train-above-zero-from-2W"]
    assert row["verdict"] == I and row["reason"] == C.DIVERGED and "2 diverged run(s) left out" in row["detail"]
    # No other check reads them either: test error "falls" on the settled runs alone.
    assert {r["id"]: r for r in analyse("t3-err-vs-n", final)}["t3-err-vs-n:test-falls"]["verdict"] == H


def test_past_zero_variant_reads_the_same_checks_under_its_own_ids():
    final = table("N", NS, [0, 0, 0, 0.05, 0.08, 0.10], [0.40, 0.33, 0.25, 0.20, 0.16, 0.14], n_params=W)
    rows = get("t3-err-vs-n-past-zero").build(
        Inputs("t3-err-vs-n-past-zero", {"stop": "zero+50"}, TOL, runs=final, requested="cifar10",
               used="cifar10")).claims
    assert [r["id"] for r in rows] == [r["id"].replace("t3-err-vs-n:", "t3-err-vs-n-past-zero:")
                                       for r in analyse("t3-err-vs-n", final)]
    assert all(r["verdict"] == H for r in rows)


def test_err_vs_n_random_holds_and_fails():
    good = table("N", NS, [0, 0, 0.3, 0.6, 0.7, 0.8], [0.90, 0.91, 0.89, 0.90, 0.90, 0.90], n_params=W)
    v = verdicts(analyse("t3-err-vs-n-random", good))
    assert v == {"test-at-chance": H, "first-unfit-N-near-W": H, "train-near-chance-at-largest-N": H}
    # Test error far from chance at one N; train error already above 0 at N = W/6; and
    # well under half of chance at the largest N.
    bad = table("N", NS, [0.4, 0.5, 0.5, 0.3, 0.3, 0.3], [0.60, 0.91, 0.89, 0.90, 0.90, 0.90], n_params=W)
    v = verdicts(analyse("t3-err-vs-n-random", bad))
    assert v == {"test-at-chance": R, "first-unfit-N-near-W": R, "train-near-chance-at-largest-N": R}
    # Every run still falling at the cap: nothing says where fitting stops.
    falling = table("N", NS, [0.05] * 6, [0.90] * 6, n_params=W, falling=[0.5] * 6)
    row = {r["id"]: r for r in analyse("t3-err-vs-n-random", falling)}["t3-err-vs-n-random:first-unfit-N-near-W"]
    assert row["verdict"] == I and row["reason"] == C.NOT_CONVERGED and row["measured"].startswith("no converged run")
    # Fitting everything, even at 4 W, also breaks "first leaves 0 near W".
    late = table("N", NS, [0] * 6, [0.90] * 6, n_params=W)
    assert verdicts(analyse("t3-err-vs-n-random", late))["first-unfit-N-near-W"] == R


def test_random_labels_need_a_point_at_4w():
    short = table("N", NS[:4], [0, 0, 0.3, 0.6], [0.9] * 4, n_params=W)
    row = {r["id"]: r for r in analyse("t3-err-vs-n-random", short)}["t3-err-vs-n-random:train-near-chance-at-largest-N"]
    assert row["verdict"] == I and row["reason"] == C.OUT_OF_REGIME


def test_err_vs_w_holds_and_fails():
    ws = [500, 800, 1200, 3000, 10000]
    good = table("n_params", ws, [0.3, 0.1, 0, 0, 0], [0.40, 0.30, 0.25, 0.24, 0.25], N=1000)
    v = verdicts(analyse("t3-err-vs-w", good))
    assert v == {"train-zero-at-first-W-past-N": H, "train-zero-above-N": H, "test-no-rise-above-N": H,
                 "test-optimal-near-N": H}
    bad = table("n_params", ws, [0.3, 0.1, 0.05, 0, 0], [0.40, 0.30, 0.25, 0.30, 0.38], N=1000)
    v = verdicts(analyse("t3-err-vs-w", bad))
    # (the best test error, 0.25 at W = 1,200, is still near N)
    assert v == {"train-zero-at-first-W-past-N": R, "train-zero-above-N": R, "test-no-rise-above-N": R,
                 "test-optimal-near-N": H}


def test_test_error_optimal_near_the_boundary():
    """memo073 section 5: best test error within W in [N/4, 4 N]; a W far past it that is
    better by 0.1 refutes, by 0.03 on 1,000 test images is within noise."""
    ws = [500, 800, 1200, 3000, 10000]
    far = table("n_params", ws, [0.3, 0.1, 0, 0, 0], [0.40, 0.35, 0.33, 0.30, 0.20], N=1000)
    assert verdicts(analyse("t3-err-vs-w", far))["test-optimal-near-N"] == R
    close = table("n_params", ws, [0.3, 0.1, 0, 0, 0], [0.40, 0.35, 0.33, 0.30, 0.27], N=1000, n_test=1000)
    row = {r["id"]: r for r in analyse("t3-err-vs-w", close)}["t3-err-vs-w:test-optimal-near-N"]
    assert (row["verdict"], row["reason"]) == (I, C.WITHIN_NOISE)


def test_err_vs_w_needs_a_grid_point_near_n():
    # The first W >= N is 3 N: "zero error as soon as W = N" is not testable there.
    sparse = table("n_params", [500, 3000, 10000], [0.3, 0, 0], [0.4, 0.3, 0.3], N=1000)
    row = {r["id"]: r for r in analyse("t3-err-vs-w", sparse)}["t3-err-vs-w:train-zero-at-first-W-past-N"]
    assert row["verdict"] == I and row["reason"] == C.UNTESTABLE and "add widths" in row["detail"]


def test_err_vs_neurons_holds_and_fails():
    ws = [300, 700, 2000, 6000]
    good = table("n_params", ws, [0.2, 0.1, 0, 0], [0.35, 0.30, 0.28, 0.27], N=1000)
    bad = table("n_params", ws, [0.2, 0.1, 0.05, 0], [0.35, 0.30, 0.28, 0.40], N=1000)
    assert verdicts(analyse("m100-err-vs-neurons", good)) == {"train-zero-past-N": H, "test-no-rise-past-N": H}
    assert verdicts(analyse("m100-err-vs-neurons", bad)) == {"train-zero-past-N": R, "test-no-rise-past-N": R}


def test_seed_spread_widens_the_standard_error():
    # A 0.04 rise is beyond noise with one seed on a huge test set, but not when seeds
    # disagree by 0.05 (standard error of a point 0.05, of a difference 0.07).
    ws = [500, 2000, 8000]
    one = table("n_params", ws, [0.1, 0, 0], [0.30, 0.25, 0.29], N=1000)
    noisy = table("n_params", ws, [0.1, 0, 0], [0.30, 0.25, 0.29], N=1000, seeds=2, jitter=0.05)
    assert verdicts(analyse("t3-err-vs-w", one))["test-no-rise-above-N"] == R
    row = {r["id"]: r for r in analyse("t3-err-vs-w", noisy)}["t3-err-vs-w:test-no-rise-above-N"]
    assert row["verdict"] == I and row["reason"] == C.WITHIN_NOISE


def test_differences_within_binomial_noise_are_neither_a_rise_nor_a_fall():
    """At n_test = 1,000 an error rate of 0.4 has a standard error of 0.0155, a difference
    0.022: test errors that wander by 0.01-0.03 neither fall nor rise; the same numbers on
    100 times the images decide (a rise of 0.03 is then beyond 2.5 se)."""
    flat = [0.40, 0.39, 0.40, 0.38, 0.41, 0.37]
    noisy = {r["id"].split(":")[1]: r for r in analyse("t3-err-vs-n", table("N", NS, [0] * 3 + [0.05] * 3, flat,
                                                                            n_params=W, n_test=1000))}
    assert noisy["test-falls"]["verdict"] == I and noisy["test-falls"]["reason"] == C.WITHIN_NOISE
    decided = verdicts(analyse("t3-err-vs-n", table("N", NS, [0] * 3 + [0.05] * 3, flat, n_params=W,
                                                    n_test=100_000)))
    assert decided["test-falls"] == R
    ws = [500, 2000, 8000]
    rise = table("n_params", ws, [0.1, 0, 0], [0.30, 0.27, 0.30], N=1000, n_test=1000)
    row = {r["id"]: r for r in analyse("t3-err-vs-w", rise)}["t3-err-vs-w:test-no-rise-above-N"]
    assert row["verdict"] == I and row["reason"] == C.WITHIN_NOISE


@pytest.mark.parametrize("direction,ys,verdict", [
    ("falls", [0.5, 0.4, 0.3], (True, None)), ("falls", [0.5, 0.6, 0.3], (False, None)),
    ("falls", [0.5, 0.495, 0.49], (False, C.WITHIN_NOISE)), ("rises", [0.3, 0.4, 0.5], (True, None)),
    ("flat_or_falls", [0.3, 0.301, 0.29], (True, None)), ("flat_or_falls", [0.3, 0.25, 0.35], (False, None)),
    ("flat_or_falls", [0.3, 0.31, 0.30], (False, C.WITHIN_NOISE))])
def test_noise_trend(direction, ys, verdict):
    """Standard errors 0.004 (of a difference 0.0057, 2.5 se = 0.014): a change of 0.02
    over the sweep is within noise; "does not rise" holds only where no rise could reach
    claims.step = 0.02."""
    held, why, _ = C.noise_trend(ys, [0.004] * 3, 2.5, direction, 0.02)
    assert (held, why) == verdict


def test_versus_a_threshold():
    assert C.versus(0.03, 0.005, 0.05, 2.5, below=True) == (True, None)
    assert C.versus(0.08, 0.005, 0.05, 2.5, below=True) == (False, None)
    assert C.versus(0.045, 0.005, 0.05, 2.5, below=True) == (False, C.WITHIN_NOISE)


def test_a_net_that_did_not_train_or_bounces_is_no_evidence_it_cannot_fit():
    """Below W, a run whose loss never left ln(10) (did not train) or whose training error
    still jumps over its last fifth of epochs (did not settle) leaves "train error near 0
    below W" inconclusive, never refuted; one that levelled off above 0 refutes it."""
    def runs(last_losses, last_errs):
        rows = []
        for e, (loss, err) in enumerate(zip(last_losses, last_errs), start=1):
            rows.append({"N": 250, "epoch": 10 * e, "train_loss": loss, "train_err": err, "test_err": 0.5,
                         "interpolated": err == 0, "loss_drop_last_fifth": 0.0, "run_id": "a", "seed": 0,
                         "n_test": EXACT, "num_classes": 10, "n_params": W, "final": e == len(last_errs)})
        return pd.DataFrame(rows)
    dead = C.final_rows(runs([2.3026, 2.3025, 2.3026, 2.3026, 2.3026], [0.9] * 5))
    bouncing = C.final_rows(runs([0.5, 0.1, 0.02, 0.2, 0.1], [0.1, 0.02, 0.004, 0.05, 0.03]))
    levelled = C.final_rows(runs([0.5, 0.3, 0.2, 0.2, 0.2], [0.1, 0.06, 0.05, 0.05, 0.05]))
    assert list(C.fit_status(dead, TOL)) == ["did not train"]
    assert list(C.fit_status(bouncing, TOL)) == ["not settled"]
    assert list(C.fit_status(levelled, TOL)) == ["levelled"]
    for final, verdict, reason in ((dead, I, C.DID_NOT_TRAIN), (bouncing, I, C.NOT_SETTLED), (levelled, R, "")):
        row = C.train_near_zero("t:x", "x", final, final["N"] < W, "N < W", TOL)
        assert (row["verdict"], row["reason"]) == (verdict, reason)


def test_grid_without_points_past_w_is_reported_not_held():
    final = table("N", [100, 200], [0, 0], [0.4, 0.3], n_params=5000)
    rows = {r["id"].split(":")[1]: r for r in analyse("t3-err-vs-n", final)}
    assert rows["gap-small-at-largest-N"]["verdict"] == I and rows["gap-small-at-largest-N"]["reason"] == C.OUT_OF_REGIME
    assert rows["train-above-zero-from-2W"]["verdict"] == I


@pytest.mark.parametrize("direction,ys,held", [("falls", [3, 2, 1], True), ("falls", [3, 3.5, 1], False),
                                               ("rises", [1, 2, 3], True), ("flat_or_falls", [1, 1.01, 0.9], True),
                                               ("flat_or_falls", [1, 0.5, 1.2], False)])
def test_trend(direction, ys, held):
    assert C.trend([1, 2, 3], ys, 0.1, direction)[0] is held


def test_a_threshold_missing_from_config_names_its_key():
    with pytest.raises(KeyError, match="claims.train_zero is missing"):
        C.Tolerances({k: v for k, v in config_claims().items() if k != "train_zero"})


# t3-poly: the polynomial net against the three puzzles, by the ReLU net's own checks.
POLY_CFG = {"widths": [8], "N": NS, "grids": [{"widths": [1, 2, 3, 4], "N": [1000]}]}


def poly_runs(natural_train, natural_test, random_train, random_test, w_train, w_test, relu=None):
    """The polynomial net's three sweeps and, beside the natural one, the ReLU net's runs
    (``relu``: its (train, test) errors by N; default the polynomial net's own)."""
    nat = table("N", NS, natural_train, natural_test, n_params=W, labels="natural", model="polyconv5")
    rnd = table("N", NS, random_train, random_test, n_params=W, labels="random", model="polyconv5")
    rtrain, rtest = relu or (natural_train, natural_test)
    rel = table("N", NS, rtrain, rtest, n_params=W, labels="relu", model="allconv5")
    for frame in (nat, rnd, rel):
        frame["width"] = 8
    ws = [200, 900, 1100, 5000]  # the first and last outside [N/4, 4 N], where the optimum is read
    by_w = table("n_params", ws, w_train, w_test, N=1000, labels="natural", model="polyconv5")
    by_w["width"] = [1, 2, 3, 4]
    runs = pd.concat([nat, rnd, by_w.assign(labels="width"), rel], ignore_index=True)
    runs["run_id"] = runs["labels"] + runs["run_id"]  # one id per run, as on disk
    return runs.assign(labels=runs["labels"].replace({"width": "natural", "relu": "natural"}))


def poly_verdicts(runs):
    rows = get("t3-poly").build(Inputs("t3-poly", POLY_CFG, TOL, runs=runs, requested="cifar10",
                                       used="cifar10")).claims
    return {r["id"].split(":", 1)[1]: r["verdict"] for r in rows}


def test_poly_net_showing_the_three_puzzles_holds_every_check():
    v = poly_verdicts(poly_runs([0, 0, 0, 0.05, 0.08, 0.10], [0.40, 0.33, 0.25, 0.20, 0.16, 0.14],
                                [0, 0, 0, 0.4, 0.6, 0.8], [0.9] * 6,
                                [0.3, 0.1, 0.0, 0.0], [0.40, 0.35, 0.30, 0.29]))
    assert set(v) == {f"err-vs-n/{k}" for k in ("train-zero-below-W", "train-above-zero-from-2W", "test-falls",
                                                "gap-small-at-largest-N")} | {
        f"err-vs-n-random/{k}" for k in ("test-at-chance", "first-unfit-N-near-W", "train-near-chance-at-largest-N")
    } | {f"err-vs-w/{k}" for k in ("train-zero-at-first-W-past-N", "train-zero-above-N", "test-no-rise-above-N",
                                   "test-optimal-near-N")} | {"like-relu"}
    assert set(v.values()) == {H}, v


def test_poly_net_that_cannot_fit_fails_the_puzzles():
    # A polynomial net that diverges or never fits: no zero train error below W, random labels
    # never fit, the W sweep never reaches 0 and its test error rises.
    v = poly_verdicts(poly_runs([0.5] * 6, [0.6] * 6, [0.9] * 6, [0.9] * 6,
                                [0.5, 0.5, 0.5, 0.5], [0.50, 0.55, 0.60, 0.70]))
    assert v["err-vs-n/train-zero-below-W"] == R and v["err-vs-n-random/first-unfit-N-near-W"] == R
    assert v["err-vs-w/train-zero-at-first-W-past-N"] == R and v["err-vs-w/test-no-rise-above-N"] == R
    assert v["err-vs-n/test-falls"] == R


def test_poly_net_unlike_the_relu_net_refutes_fig_21():
    good = ([0, 0, 0, 0.05, 0.08, 0.10], [0.40, 0.33, 0.25, 0.20, 0.16, 0.14], [0, 0, 0, 0.4, 0.6, 0.8], [0.9] * 6,
            [0.3, 0.1, 0.0, 0.0], [0.40, 0.35, 0.30, 0.29])
    assert poly_verdicts(poly_runs(*good))["like-relu"] == H
    worse = ([0, 0, 0, 0.05, 0.08, 0.10], [0.40, 0.33, 0.25, 0.20, 0.16, 0.05])  # ReLU tests 0.09 better at 6,000
    assert poly_verdicts(poly_runs(*good, relu=worse))["like-relu"] == R


def test_poly_runs_that_diverged_are_counted_and_read_by_no_check():
    runs = poly_runs([0, 0, 0, 0.05, 0.08, 0.10], [0.40, 0.33, 0.25, 0.20, 0.16, 0.14],
                     [0, 0, 0, 0.4, 0.6, 0.8], [0.9] * 6, [0.3, 0.1, 0.0, 0.0], [0.40, 0.35, 0.30, 0.29])
    runs["diverged"] = runs["labels"].eq("random")            # every random-label run overflowed
    out = get("t3-poly").build(Inputs("t3-poly", POLY_CFG, TOL, runs=runs, requested="cifar10", used="cifar10"))
    rows = {r["id"].split(":", 1)[1]: r for r in out.claims}
    random = [r for k, r in rows.items() if k.startswith("err-vs-n-random/")]
    assert len(random) == 3 and all(r["verdict"] == I and r["reason"] == C.DIVERGED
                                    and "all 6 run(s) of this sweep diverged" in r["measured"] for r in random)
    assert all(r["verdict"] == H for k, r in rows.items() if not k.startswith("err-vs-n-random/"))
    counts = out.table[out.table["sweep"] == "random"]
    assert counts["diverged"].sum() == 6 and counts["train_err"].isna().all()
