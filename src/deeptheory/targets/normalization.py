"""m90-normalization (memo090 abstract; memo100 sections 3.D-3.F): plain gradient descent
against weight normalization (WN) and batch normalization (BN), from balanced and
unbalanced layer inits, in two settings.

- Setting A, "cnn": the bias-free homogeneous ReLU CNNs of ``deeptheory.models.normalization``
  (families hcnn, hcnnu, hcnnwn, hcnnbn) trained by the engine with full-batch GD (the
  recipe the config names) for one step count; each net analysed alone (its ``analyzer``,
  ``deeptheory.analyses.normalization``): its normalized margin on its training subset and
  its squared layer norms at init and at the end.
- Setting B, "deep": a deep homogeneous ReLU net on linearly separable data
  (``synthetic.nets.train_normalized``), plain GD vs WN vs a BN-like per-unit normalization,
  balanced vs unbalanced init, computed in the build from the target's ``synthetic`` entry.

Claims (docs/CATALOG.md), in each setting: (a) WN and BN reach a larger margin, each under
its own normalization, than plain GD at matched training loss (A: on each run's GD replayed
step by step in its analysis); (b) under plain GD the differences of the squared layer norms
stay constant, so a balanced init stays balanced and an unbalanced one unbalanced. Setting B
under the square loss: (c) WN's margin claim, and NMGD (GD as a Halpern iteration) ends at a
fixed point of smaller norm than plain GD, both near zero loss. Each claim's rule is a pure function of measurement dicts, so tests can feed
it numbers that break it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import claims as C
from .. import plots
from ..analyses import normalization as NA
from ..synthetic import linear, nets
from . import Analysis, Inputs, Outcome, Target
from .homogeneous import balance_measurements

# The registry's entries (deeptheory.targets): plain literals, read without importing this module.
TARGETS = [
    Target(
        id="m90-normalization",
        source="memo090 abstract; memo100 sections 3.D-3.F",
        what="plain GD vs weight and batch normalization, balanced vs unbalanced init: normalized margin and layer "
             "norms of a homogeneous CNN and a deep ReLU net on separable data",
        claims="in each setting, (a) weight and batch normalization reach a larger normalized margin (min over the "
               "training set of the margin, over the product of the layers' effective Frobenius norms) than plain GD "
               "after the same number of steps; (b) under plain GD the differences of squared layer norms stay "
               "constant, so a balanced init stays balanced and an unbalanced one unbalanced",
        caption="plain gradient descent vs weight normalization vs batch normalization, from balanced and unbalanced "
                "layer inits. A (left two panels): a bias-free homogeneous ReLU CNN trained by full-batch GD, its "
                "normalized margin on the training subset after the same number of steps, and its squared layer "
                "norms at init and at the end. B (right two, computed in the target's own job): a deep homogeneous "
                "ReLU net on linearly separable data, its normalized margin over GD steps, and the differences of "
                "squared layer norms under plain GD",
        builder="build",
        analyzer="analyze",
        unit="run",
        sweep="grid",
    ),
]

TID = "m90-normalization"
# Setting A: the family of each (method, init) of the grid.
CNN = {("plain", "balanced"): "hcnn", ("plain", "unbalanced"): "hcnnu", ("wn", "balanced"): "hcnnwn",
       ("bn", "balanced"): "hcnnbn"}
METHOD_NAMES = {"plain": "plain GD", "wn": "weight norm", "bn": "batch norm"}
INITS = ("balanced", "unbalanced")


def analyze(runs, cfg: dict, seed: int) -> Analysis:
    return NA.analyze(runs)


# --- measurements --------------------------------------------------------------------------

def layer_count(row, prefix: str) -> int:
    return sum(1 for k in row.index if k.startswith(prefix) and k.endswith("_init"))


def cnn_nets(analyses: pd.DataFrame) -> pd.DataFrame:
    """One row per trained CNN, with its method and init read from its family."""
    family = {v: k for k, v in CNN.items()}
    rows = analyses.copy()
    known = rows["model"].isin(list(family))
    if not known.all():
        raise ValueError(f"{TID}: families {sorted(set(rows['model'][~known]))} are not in its grid {sorted(family)}")
    rows["method"] = [family[m][0] for m in rows["model"]]
    rows["init"] = [family[m][1] for m in rows["model"]]
    rows["setting"] = "cnn"
    return rows.sort_values(["seed", "method", "init"]).reset_index(drop=True)


def cnn_balance(row: pd.Series) -> dict:
    """balance_measurements (m100-balance's) of one plain CNN from its init and final norms."""
    L = layer_count(row, "sq_w")
    two = pd.DataFrame({"step": [0, int(row["steps"])],
                        "train_err": [row["train_err_init"], row["train_err_final"]],
                        "loss": [row["train_loss_init"], row["train_loss_final"]],
                        "normalized_margin": [row["normalized_margin_init"], row["normalized_margin_final"]],
                        **{f"sq_norm_{k}": [row[f"sq_w{k}_init"], row[f"sq_w{k}_final"]] for k in range(1, L + 1)}})
    return balance_measurements(two, L)


def deep_runs(cfg: dict, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Setting B: every (method, init) from one draw of separable data. Returns the
    trajectories (one row per recorded step) and one row per net at its last step."""
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], np.random.default_rng(seed))
    widths = [cfg["d"], *cfg["hidden"], 1]
    tables, finals = [], []
    for method in nets.NORMALIZATIONS:
        for init in INITS:
            r = float(cfg["unbalance"]) if init == "unbalanced" else 1.0
            t = pd.DataFrame(nets.train_normalized(X, y, widths, method, cfg["steps"], cfg["eta"], seed, unbalance=r))
            t = t.assign(setting="deep", method=method, init=init, unbalance=r)
            t = t.assign(**{f"sq_norm_{k}": t[f"sq_w_{k}"] for k in range(1, len(widths))})
            tables.append(t)
            finals.append(t.iloc[-1])
    return pd.concat(tables, ignore_index=True), pd.DataFrame(finals).reset_index(drop=True)


SQUARE_METHODS = ("plain", "wn", "nmgd")
METHOD_NAMES["nmgd"] = "NMGD"


def deep_square_runs(cfg: dict, seed: int) -> pd.DataFrame:
    """Setting B under the square loss (memo090's other loss): plain GD, WN and NMGD (GD as a
    Halpern iteration anchored at 0, ``nets.train_normalized``) from both inits, on the data
    and with the steps of :func:`deep_runs`. One row per recorded step."""
    X, y = linear.separable_blobs(cfg["n"], cfg["d"], cfg["margin"], np.random.default_rng(seed))
    widths = [cfg["d"], *cfg["hidden"], 1]
    tables = []
    for method in SQUARE_METHODS:
        for init in INITS:
            r = float(cfg["unbalance"]) if init == "unbalanced" else 1.0
            t = pd.DataFrame(nets.train_normalized(X, y, widths, method, cfg["steps"], cfg["eta"], seed, unbalance=r,
                                                   loss="square", halpern_t0=cfg["halpern_t0"]))
            sq = t[[f"sq_eff_{k}" for k in range(1, len(widths))]].sum(axis=1)
            tables.append(t.assign(setting="deep-square", method=method, init=init, unbalance=r, sq_norm=sq))
    return pd.concat(tables, ignore_index=True)


# --- claims --------------------------------------------------------------------------------

def margin_pairs(nets_: pd.DataFrame, method: str, col: str, keys=("seed", "init")) -> list[dict]:
    """(plain, method) normalized margins of nets equal in everything else (``keys``)."""
    out = []
    for key, group in nets_.groupby(list(keys)):
        by = dict(zip(group["method"], group[col]))
        if method in by and "plain" in by:
            out.append({"key": key, "plain": float(by["plain"]), "method": float(by[method])})
    return out


def margin_claim(cid: str, setting: str, method: str, pairs: list[dict], tol, point: str,
                 measure: str = "normalized margin") -> dict:
    """(a) held if in every pair the method's margin (``measure``) is positive (it separates
    the data) and at least ``margin_smaller_factor`` times plain GD's; inconclusive where
    no pair has a net that separates."""
    f = tol.margin_smaller_factor
    name = METHOD_NAMES[method]
    text = f"{setting}: {name} reaches a larger {measure} than plain GD ({point})"
    rule = (f"held if in every pair the {name} net's {measure} is > 0 and >= {f:g} x plain GD's "
            f"(margin_smaller_factor); fails if plain GD matches or exceeds it")
    fmt = "; ".join(f"{_key(p['key'])}: {name} {p['method']:.4g} vs plain {p['plain']:.4g}" for p in pairs)
    if not pairs:
        return C.untestable(cid, text, "no pair of nets equal but for the method", rule)
    if all(p["plain"] <= 0 and p["method"] <= 0 for p in pairs):
        return C.untestable(cid, text, f"no net separates its training data; {fmt}", rule, reason=C.NOT_CONVERGED)
    held = all(p["method"] > 0 and p["method"] >= f * p["plain"] for p in pairs)
    return C.claim(cid, text, held, f"{measure}, {fmt}", rule)


def _key(key) -> str:
    """A pair's grid point as text: seed 0, balanced init."""
    parts = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"seed {v}" if isinstance(v, (int, np.integer)) else f"{v} init" for v in parts)


def _fmt(xs) -> str:
    return ", ".join(f"{x:.4g}" for x in xs)


def balance_claim(cid: str, setting: str, ms: dict, tol) -> dict:
    """(b), balanced init: the drift of |W_k|^2 - |W_k+1|^2 is within ``balance_tol`` of the
    largest growth of a |W_k|^2, for every net (``ms``: name -> balance_measurements)."""
    t = tol.balance_tol
    text = f"{setting}: under plain GD a balanced init stays balanced (the differences of squared layer norms stay constant)"
    if not ms:
        return C.untestable(cid, text, "no balanced plain net", "needs one")
    held = all(m["drift"] <= t * max(m["growth"]) for m in ms.values())
    measured = "; ".join(f"{k}: drift {m['drift']:.4g}, growth of |W_k|^2 {_fmt(m['growth'])}, differences at the end "
                         f"{_fmt(m['diffs_end'])}" for k, m in ms.items())
    return C.claim(cid, text, held, measured,
                   f"held if the largest drift of |W_k|^2 - |W_k+1|^2 is <= {t:g} x the largest growth of a |W_k|^2 "
                   f"(balance_tol); fails if one layer's norm grows faster than another's; inconclusive if a net's "
                   f"loss or norms left the floats", inconclusive=_diverged(ms))


def _diverged(ms: dict) -> str | None:
    """A conservation law says nothing of a run whose loss or norms became non-finite."""
    return C.DIVERGED if any(m.get("diverged") for m in ms.values()) else None


def imbalance_claim(cid: str, setting: str, ms: dict, unbalance: float, tol) -> dict:
    """(b), unbalanced init: the start is unbalanced beyond ``balance_tol`` of the growth and
    its differences drift by at most that."""
    t = tol.balance_tol
    text = f"{setting}: under plain GD an unbalanced init stays unbalanced (its differences stay constant)"
    if not ms:
        return C.untestable(cid, text, "no unbalanced plain net", "needs one")
    held = all(max(abs(x) for x in m["diffs_start"]) > t * max(m["growth"])
               and m["drift"] <= t * max(m["growth"]) for m in ms.values())
    measured = "; ".join(f"{k}: differences at init {_fmt(m['diffs_start'])}, at the end {_fmt(m['diffs_end'])}; drift "
                         f"{m['drift']:.4g}; growth {_fmt(m['growth'])}" for k, m in ms.items())
    return C.claim(cid, text, held, measured,
                   f"first layer x{unbalance:g}, last x1/{unbalance:g} at init; held if the largest difference at init is "
                   f"> {t:g} x the largest growth and the differences drift by <= {t:g} x that growth (balance_tol); "
                   f"fails if GD balances the layers or unbalances them further", inconclusive=_diverged(ms))


# Each method's margin is read under its own normalization: WN's constraint is one norm per
# layer (the per-layer normalized margin), BN's one per unit, bias included (unit_margin:
# docs/CATALOG.md, claim changes). Plain GD's partner is measured the same way.
MARGIN = {"wn": "normalized_margin", "bn": "unit_margin"}
MEASURE = {"normalized_margin": "normalized margin", "unit_margin": "margin under per-unit normalization (BN's own)"}


def trajectory(arrays: dict, unit: str) -> pd.DataFrame:
    """A CNN's replayed steps (``analyses.normalization.replay``) as a table."""
    got = arrays.get(unit) or {}
    if "replay_step" not in got:
        raise ValueError(f"{TID}: the analysis of {unit} kept no replayed trajectory (arrays replay_*)")
    return pd.DataFrame({k.removeprefix("replay_"): v for k, v in got.items() if k.startswith("replay_")})


def first_at_or_below(traj: pd.DataFrame, level: float) -> pd.Series:
    """The record of the first step whose training loss is at or below ``level``."""
    return traj.sort_values("step").loc[lambda t: t["loss"] <= level].iloc[0]


def cnn_matched_pairs(rows: pd.DataFrame, arrays: dict, method: str) -> list[dict]:
    """(plain, method) margins of the CNNs equal but for the method, each read at its first
    step at or below the larger of the two nets' final training losses (setting B's rule,
    per pair)."""
    col, out = MARGIN[method], []
    for key, group in rows.groupby(["seed", "init"]):
        by = {r["method"]: trajectory(arrays, r["unit"]) for _, r in group.iterrows()}
        if method not in by or "plain" not in by:
            continue
        level = max(float(by[m].sort_values("step")["loss"].iloc[-1]) for m in ("plain", method))
        at = {m: first_at_or_below(by[m], level) for m in ("plain", method)}
        out.append({"key": key, "plain": float(at["plain"][col]), "method": float(at[method][col]), "level": level,
                    "steps": (int(at["plain"]["step"]), int(at[method]["step"]))})
    return out


def _gap(rows: pd.DataFrame) -> str:
    """The largest relative gap between a replay and its run (analysis column replay_gap)."""
    return f"{rows['replay_gap'].max():.2g}" if "replay_gap" in rows else "(not recorded)"


def cnn_claims(rows: pd.DataFrame, arrays: dict, tol, steps: int) -> list[dict]:
    plain = rows[rows["method"] == "plain"]
    ms = {init: {f"seed {int(row['seed'])}": cnn_balance(row) for _, row in plain[plain["init"] == init].iterrows()}
          for init in INITS}
    unbalanced = plain[plain["init"] == "unbalanced"]
    unbalance = float(unbalanced["unbalance"].max()) if len(unbalanced) else float("nan")
    out = []
    for m in ("wn", "bn"):
        pairs = cnn_matched_pairs(rows, arrays, m)
        where = "; ".join(f"{_key(p['key'])}: loss {p['level']:.3g} at steps {p['steps'][0]} (plain) and "
                          f"{p['steps'][1]} ({METHOD_NAMES[m]})" for p in pairs)
        out.append(margin_claim(f"{TID}:cnn-{m}-margin", "CNN", m, pairs, tol,
                                f"at matched training loss ({where}), within {steps} full-batch GD steps; the replays' "
                                f"training loss within {_gap(rows)} of metrics.csv's (relative)", MEASURE[MARGIN[m]]))
    return out + [balance_claim(f"{TID}:cnn-balance-kept", "CNN", ms["balanced"], tol),
                  imbalance_claim(f"{TID}:cnn-imbalance-kept", "CNN", ms["unbalanced"], unbalance, tol)]


def at_matched_loss(traj: pd.DataFrame) -> pd.DataFrame:
    """Per init, every method's record at the first step its training loss is down to the
    level all of them reach (the largest of their final losses): normalization changes the
    speed of GD, so margins after equal steps compare nets at different points of the fit."""
    rows = []
    for init, group in traj.groupby("init"):
        level = group.sort_values("step").groupby("method")["loss"].last().max()
        for method, t in group.groupby("method"):
            t = t.sort_values("step")
            rows.append(t[t["loss"] <= level].iloc[0].to_dict() | {"matched_loss": level})
    return pd.DataFrame(rows)


def deep_claims(traj: pd.DataFrame, finals: pd.DataFrame, cfg: dict, tol) -> list[dict]:
    L = len(cfg["hidden"]) + 1
    plain = traj[traj["method"] == "plain"]
    ms = {init: {f"{init} init": balance_measurements(plain[plain["init"] == init], L)} for init in INITS}
    matched = at_matched_loss(traj)
    levels = ", ".join(f"{i} init {v:.3g}" for i, v in matched.groupby("init")["matched_loss"].first().items())
    point = f"at matched training loss ({levels}), within {cfg['steps']} GD steps"
    return [*(margin_claim(f"{TID}:deep-{m}-margin", "deep net", m, margin_pairs(matched, m, MARGIN[m], ("init",)), tol,
                           point, MEASURE[MARGIN[m]]) for m in ("wn", "bn")),
            balance_claim(f"{TID}:deep-balance-kept", "deep net", ms["balanced"], tol),
            imbalance_claim(f"{TID}:deep-imbalance-kept", "deep net", ms["unbalanced"], float(cfg["unbalance"]), tol)]


def pairs_at_matched_loss(traj: pd.DataFrame, method: str) -> list[dict]:
    """Per init, plain GD's and ``method``'s records at their first step at or below the
    larger of the two nets' final losses (the CNN's rule, on setting B's trajectories)."""
    out = []
    for init, group in traj.groupby("init"):
        by = {m: t.sort_values("step") for m, t in group.groupby("method")}
        if method not in by or "plain" not in by:
            continue
        level = max(float(by[m]["loss"].iloc[-1]) for m in ("plain", method))
        at = {m: first_at_or_below(by[m], level) for m in ("plain", method)}
        out.append({"key": init, "level": level, "plain_row": at["plain"], "method_row": at[method]})
    return out


def square_regime(pairs: list[dict], tol) -> str | None:
    """memo090 speaks of nets near zero minima: every pair matched at a mean square loss at
    most ``square_fit_loss``, every net there classifying its training data right."""
    near = all(p["level"] <= tol.square_fit_loss and p["plain_row"]["train_err"] == 0
               and p["method_row"]["train_err"] == 0 for p in pairs)
    return None if near else C.OUT_OF_REGIME


def _levels(pairs: list[dict]) -> str:
    return ", ".join(f"{_key(p['key'])} {p['level']:.3g} (steps {int(p['plain_row']['step'])}, "
                     f"{int(p['method_row']['step'])})" for p in pairs)


def square_nmgd_claim(traj: pd.DataFrame, tol) -> dict:
    """NMGD converges to the minimum norm fixed points of GD: at matched square loss near
    zero, its sum_k |W_k|^2 is smaller than plain GD's by ``norm_larger_factor``."""
    cid, f, t = f"{TID}:deep-square-nmgd-min-norm", tol.norm_larger_factor, tol.square_fit_loss
    pairs = pairs_at_matched_loss(traj, "nmgd")
    text = ("deep net, square loss: NMGD (norm minimizing GD, a Halpern iteration) reaches a zero-loss fixed point of "
            "smaller norm than plain GD")
    rule = (f"held if in every init plain GD's sum_k |W_k|^2 is >= {f:g} x NMGD's (norm_larger_factor) at matched "
            f"training loss; fails if NMGD's norm is as large; inconclusive (outside the regime) unless every pair "
            f"matches at mean square loss <= {t:g} (square_fit_loss) with train error 0")
    if not pairs:
        return C.untestable(cid, text, "no pair of NMGD and plain GD", rule)
    measured = "; ".join(f"{_key(p['key'])}: sum |W_k|^2 NMGD {p['method_row']['sq_norm']:.4g} vs plain "
                         f"{p['plain_row']['sq_norm']:.4g}" for p in pairs) + f"; matched loss {_levels(pairs)}"
    held = all(p["plain_row"]["sq_norm"] >= f * p["method_row"]["sq_norm"] for p in pairs)
    return C.claim(cid, text, held, measured, rule, inconclusive=square_regime(pairs, tol))


def square_wn_claim(traj: pd.DataFrame, tol) -> dict:
    """WN's margin claim under the square loss, at matched loss near zero (``margin_claim``)."""
    pairs = pairs_at_matched_loss(traj, "wn")
    flat = [{"key": p["key"], "plain": float(p["plain_row"]["normalized_margin"]),
             "method": float(p["method_row"]["normalized_margin"])} for p in pairs]
    row = margin_claim(f"{TID}:deep-square-wn-margin", "deep net, square loss", "wn", flat, tol,
                       f"at matched training loss ({_levels(pairs)})")
    if row["verdict"] != C.INCONCLUSIVE and square_regime(pairs, tol):
        row = C.claim(row["id"], row["claim"], False, row["measured"],
                      row["detail"] + f"; inconclusive (outside the regime) unless every pair matches at mean square "
                      f"loss <= {tol.square_fit_loss:g} (square_fit_loss) with train error 0", inconclusive=C.OUT_OF_REGIME)
    return row


# --- figure --------------------------------------------------------------------------------

COLORS = {"plain": "tab:blue", "wn": "tab:orange", "bn": "tab:green", "nmgd": "tab:red"}


def _draw(cnn: pd.DataFrame, traj: pd.DataFrame, square: pd.DataFrame):
    def draw(caption, png, pdf):
        fig, axes = plots.panels(5, 3.9, 3.4)
        ax = axes[0]
        labels = [f"{METHOD_NAMES[m]}\n{i}" for m, i in zip(cnn["method"], cnn["init"])]
        ax.bar(range(len(cnn)), cnn["normalized_margin_final"], color=[COLORS[m] for m in cnn["method"]])
        ax.set_xticks(range(len(cnn)), labels, fontsize=6)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_ylabel("normalized margin at the end")
        ax.set_title("A: CNN, training subset", fontsize=8)
        ax = axes[1]
        plain = cnn[cnn["method"] == "plain"]
        for (_, r), color in zip(plain.iterrows(), ("tab:blue", "tab:purple", "tab:cyan", "tab:pink")):
            L = layer_count(r, "sq_w")
            ks = np.arange(1, L + 1)
            ax.plot(ks, [r[f"sq_w{k}_init"] for k in ks], ls="--", marker="o", color=color,
                    label=f"{r['init']} s{r['seed']}, init")
            ax.plot(ks, [r[f"sq_w{k}_final"] for k in ks], ls="-", marker="s", color=color, label="... at the end")
        ax.set_xticks(range(1, int(plain.pipe(lambda d: layer_count(d.iloc[0], "sq_w"))) + 1) if len(plain) else [])
        ax.set_xlabel("layer k")
        ax.set_ylabel("|W_k|_F^2, plain GD")
        ax.set_yscale("log")
        ax.set_title("A: CNN layer norms", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[2]
        for (method, init), t in traj.groupby(["method", "init"]):
            ax.plot(t["step"].clip(lower=1), t["normalized_margin"], color=COLORS[method],
                    ls="-" if init == "balanced" else "--", label=f"{METHOD_NAMES[method]}, {init}")
        ax.set_xscale("log")
        ax.set_ylim(bottom=max(-0.5, float(traj["normalized_margin"].min())))
        ax.set_xlabel("GD step")
        ax.set_ylabel("normalized margin")
        ax.set_title("B: deep ReLU net, separable data", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[3]
        L = sum(1 for c in traj.columns if c.startswith("sq_norm_"))
        for init, t in traj[traj["method"] == "plain"].groupby("init"):
            for k in range(1, L):
                ax.plot(t["step"].clip(lower=1), t[f"sq_norm_{k}"] - t[f"sq_norm_{k + 1}"],
                        ls="-" if init == "balanced" else "--", label=f"|W{k}|^2 - |W{k + 1}|^2, {init}")
        ax.set_xscale("log")
        ax.set_xlabel("GD step")
        ax.set_ylabel("difference of squared norms, plain GD")
        ax.set_title("B: balance", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[4]
        for (method, init), t in square.groupby(["method", "init"]):
            ax.plot(t["loss"], t["sq_norm"], color=COLORS[method], ls="-" if init == "balanced" else "--",
                    label=f"{METHOD_NAMES[method]}, {init}")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("training loss (square), falling ->")
        ax.set_ylabel("sum_k |W_k|_F^2")
        ax.set_title("B: square loss, GD vs WN vs NMGD", fontsize=8)
        ax.legend(fontsize=6)
        plots.save(fig, caption, png, pdf)
    return draw


def _setup(cnn: pd.DataFrame, cfg: dict) -> str:
    first = cnn.iloc[0]
    deep = cfg["synthetic"]
    return (f"A: width {int(first['width'])} (W = {int(cnn['n_params'].min()):,} to {int(cnn['n_params'].max()):,} weights), "
            f"N = {int(first['N']):,}, full-batch GD at lr {first['lr']:g} for {int(first['steps'])} steps, "
            f"{cnn['seed'].nunique()} seed(s); B: widths {[deep['d'], *deep['hidden'], 1]}, n = {deep['n']}, "
            f"exponential and square loss, GD at eta {deep['eta']:g} for {deep['steps']} steps (NMGD: alpha_t = "
            f"1 / (t + {deep['halpern_t0']:g}))")


def with_test_error(cnn: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """Each net's final test error from its metrics (reported, not claimed)."""
    if runs is None:
        return cnn.assign(test_err_final=np.nan)
    final = runs[runs["final"].astype(bool)][["run_id", "test_err"]].rename(columns={"test_err": "test_err_final"})
    return cnn.merge(final, on="run_id", how="left")


def build(inp: Inputs) -> Outcome:
    cnn = with_test_error(cnn_nets(inp.analyses), inp.runs)
    steps = int(cnn["steps"].iloc[0])
    traj, finals = deep_runs(inp.cfg["synthetic"], inp.seed)
    square = deep_square_runs(inp.cfg["synthetic"], inp.seed)
    claims = (cnn_claims(cnn, inp.arrays, inp.tol, steps) + deep_claims(traj, finals, inp.cfg["synthetic"], inp.tol)
              + [square_wn_claim(square, inp.tol), square_nmgd_claim(square, inp.tol)])
    last = square.sort_values("step").groupby(["method", "init"]).tail(1)
    deep = pd.concat([finals, last], ignore_index=True).rename(columns={
        "normalized_margin": "normalized_margin_final", "loss": "train_loss_final", "train_err": "train_err_final",
        "margin": "margin_final", "sq_norm": "sq_norm_final"})
    table = pd.concat([cnn, deep], ignore_index=True)
    return Outcome(table, claims, _draw(cnn, traj, square), _setup(cnn, inp.cfg))
