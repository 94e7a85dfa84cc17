"""The landscape of the empirical loss around SGD's minimizers (memo073 sections 5.1, 6.1):
minibatch gradients at the final weights (Fig 5), training error over the simplex of three
minimizers (Figs 11, 12, eq. 15) and the flatness radius along random directions (Table 1,
eq. 16).

Every computation reads a net's weights as a dict of tensors and evaluates the net through
``torch.func.functional_call``, batched over weight settings with ``vmap``: one pass
evaluates many grid points or directions at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch.func import functional_call, grad, vmap

# Images one batched pass holds (weight settings x images): bounds the activations in memory.
EVAL_BUDGET = 16384


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.named_parameters()}


def stack(settings: list[dict]) -> dict[str, torch.Tensor]:
    """Weight settings as one dict whose tensors lead with the setting axis."""
    return {k: torch.stack([s[k] for s in settings]) for k in settings[0]}


def errors_at(model, stacked: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
    """Mean cross-entropy and error rate on (x, y) of every weight setting in ``stacked``
    (tensors of shape (P, ...)); returns two tensors of shape (P,)."""
    count = next(iter(stacked.values())).shape[0]
    chunk = max(1, EVAL_BUDGET // len(y))
    scores = vmap(lambda p: functional_call(model, p, (x,)))
    losses, errs = [], []
    with torch.no_grad():
        for i in range(0, count, chunk):
            out = scores({k: v[i : i + chunk] for k, v in stacked.items()})  # (p, n, classes)
            losses.append(F.cross_entropy(out.transpose(1, 2), y.expand(len(out), -1), reduction="none").mean(1))
            errs.append((out.argmax(2) != y).double().mean(1))
    return torch.cat(losses), torch.cat(errs)


# --- memo073 Fig 5: components of minibatch gradients ------------------------------------

def flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)


def component_names(params: dict[str, torch.Tensor], idx: np.ndarray) -> list[str]:
    """'<parameter>[<flat index>]' for each global component index."""
    sizes = np.cumsum([0] + [v.numel() for v in params.values()])
    names = list(params)
    at = np.searchsorted(sizes, idx, side="right") - 1
    return [f"{names[a]}[{i - sizes[a]}]" for a, i in zip(at, idx)]


def minibatch_gradients(model, x, y, batch_size: int, batches: int, gen: torch.Generator) -> torch.Tensor:
    """Gradients of the mean cross-entropy over ``batches`` minibatches of ``batch_size``
    drawn uniformly (without replacement within a batch) from (x, y): (batches, W)."""
    params = weights(model)
    n = len(y)
    size = min(batch_size, n)

    def loss(p, xb, yb):
        return F.cross_entropy(functional_call(model, p, (xb,)), yb)

    per_batch = vmap(grad(loss), in_dims=(None, 0, 0))
    chunk = max(1, EVAL_BUDGET // size)
    out = []
    for i in range(0, batches, chunk):
        m = min(chunk, batches - i)
        idx = torch.rand(m, n, generator=gen).argsort(dim=1)[:, :size].to(y.device)
        out.append(flat(per_batch(params, x[idx], y[idx])))
    return torch.cat(out)


def full_gradient(model, x, y) -> torch.Tensor:
    """The gradient of the mean cross-entropy over all of (x, y), (W,)."""
    params = {k: v.clone().requires_grad_(True) for k, v in weights(model).items()}
    chunk = EVAL_BUDGET
    total = sum(F.cross_entropy(functional_call(model, params, (x[i : i + chunk],)), y[i : i + chunk],
                                reduction="sum") for i in range(0, len(y), chunk))
    grads = torch.autograd.grad(total / len(y), list(params.values()))
    return torch.cat([g.reshape(-1) for g in grads])


def per_example_gradients(model, x, y, comps: np.ndarray, chunk: int = 256) -> torch.Tensor:
    """The components ``comps`` of the gradient of each example's cross-entropy, (N, len(comps)).
    Without batch statistics in the net, a minibatch's gradient is the mean of its examples'
    rows: one pass gives the minibatch gradients of every size (:func:`batch_means`)."""
    params = weights(model)
    cols = torch.as_tensor(comps, device=y.device)

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    return torch.cat([flat(per_example(params, x[i : i + chunk], y[i : i + chunk]))[:, cols]
                      for i in range(0, len(y), chunk)])


def batch_means(per_example: torch.Tensor, size: int, batches: int, gen: torch.Generator) -> np.ndarray:
    """Means of the rows of ``per_example`` over ``batches`` minibatches of ``size`` rows, each
    drawn uniformly without replacement (as :func:`minibatch_gradients` draws them), in float64:
    (batches, columns)."""
    n = per_example.shape[0]
    if not 1 <= size <= n:
        raise ValueError(f"a minibatch of {size} cannot be drawn from {n} examples")
    idx = torch.rand(batches, n, generator=gen).argsort(dim=1)[:, :size]
    pick = torch.zeros(batches, n, dtype=torch.float64).scatter_(1, idx, 1.0)
    return (pick @ per_example.double().cpu() / size).numpy()


def finite_population_sd(size, n):
    """sd of the mean of ``size`` draws without replacement from ``n`` values, in units of the
    values' sd (ddof 1): sqrt((n - size) / ((n - 1) size)), 0 at size = n."""
    size = np.asarray(size, float)
    return np.sqrt((n - size) / ((n - 1) * size))


def kurtosis_se(n: int) -> float:
    """Standard error of the sample excess kurtosis (scipy's bias-corrected G2) of ``n``
    Gaussian draws: sqrt(24 n (n - 1)^2 / ((n - 3)(n - 2)(n + 3)(n + 5))), about sqrt(24 / n)."""
    return math.sqrt(24 * n * (n - 1) ** 2 / ((n - 3) * (n - 2) * (n + 3) * (n + 5)))


def component_stats(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Per column of ``samples`` (draws x components): mean, sd, |mean| / sd, excess
    kurtosis, skewness and the Shapiro-Wilk p-value. A component whose draws are all equal
    (a weight no example moves: a dead unit) has no shape: its statistics are NaN."""
    mean = samples.mean(0)
    moving = samples.max(0) > samples.min(0)  # exact: a float sd of equal draws need not be 0
    sd = np.where(moving, samples.std(0, ddof=1), 0.0)
    nan = np.full(samples.shape[1], np.nan)
    kurt, skew, shapiro, ratio = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    s = samples[:, moving]
    kurt[moving] = stats.kurtosis(s, axis=0, fisher=True, bias=False)
    skew[moving] = stats.skew(s, axis=0, bias=False)
    shapiro[moving] = [stats.shapiro(col).pvalue for col in s.T]
    ratio[moving] = np.abs(mean[moving]) / sd[moving]
    return {"mean": mean, "sd": sd, "mean_over_sd": ratio, "excess_kurtosis": kurt, "skewness": skew,
            "shapiro_p": shapiro}


# --- memo073 Figs 11, 12, eq. 15: the simplex of three minimizers ---------------------------

def simplex_grid(points: int) -> np.ndarray:
    """The barycentric points (l1, l2, l3) with l_i = k_i / (points - 1), sum 1: points per edge."""
    m = points - 1
    return np.array([(i / m, j / m, (m - i - j) / m) for i in range(m + 1) for j in range(m + 1 - i)])


def simplex_errors(model, minimizers: list[dict], lambdas: np.ndarray, x, y):
    """Training loss and error of w_lambda = l1 w1 + l2 w2 + l3 w3 at every row of ``lambdas``."""
    lam = torch.as_tensor(lambdas, dtype=torch.float32, device=x.device)
    w = stack(minimizers)
    mixed = {k: torch.einsum("pm,m...->p...", lam, v) for k, v in w.items()}
    return errors_at(model, mixed, x, y)


# --- memo073 Table 1, eq. 16: the flatness radius --------------------------------------------

def top_layer(params: dict[str, torch.Tensor]) -> list[str]:
    """The parameters of the last module that has any: the top layer's weight and bias."""
    last = list(params)[-1].rsplit(".", 1)[0]
    return [k for k in params if k.rsplit(".", 1)[0] == last]


def unit_directions(params: dict[str, torch.Tensor], names: list[str], count: int,
                    gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``count`` isotropic random directions of unit norm over the parameters ``names``
    (zero elsewhere), as a stacked weight dict (count, ...)."""
    draws = {k: torch.randn((count, *v.shape), generator=gen).to(v.device) if k in names
             else torch.zeros((count, *v.shape), device=v.device) for k, v in params.items()}
    norm = torch.sqrt(sum((d.reshape(count, -1) ** 2).sum(1) for d in draws.values()))
    return {k: d / norm.view(-1, *[1] * (d.dim() - 1)) for k, d in draws.items()}


def scan_radii(r_max: float, r_tol: float) -> np.ndarray:
    """The scan of the flatness search: from r_tol up to r_max in steps of a factor sqrt 2
    (r_max last), so that a bracket is never wider than 41% of where it lies."""
    steps = math.ceil(2 * math.log2(r_max / r_tol))
    return np.append(r_tol * 2.0 ** (np.arange(steps) / 2), r_max)


def flatness_radius(model, x, y, directions: dict[str, torch.Tensor], epsilon: float, r_max: float,
                    r_tol: float):
    """eq. 16 with I = training error, per direction: the first r at which |err(w + r d) -
    err(w)| exceeds epsilon. The error need not change monotonically in r, so the search
    first scans r on a geometric grid (:func:`scan_radii`) for the first point past epsilon,
    then bisects between it and the scan point before it down to r_tol: the radius is the
    first crossing as that scan resolves it. A direction whose error never moves by more
    than epsilon up to r_max gets r_max (``censored``).
    Returns (radius, censored, base error) with one entry per direction."""
    w = weights(model)
    count = next(iter(directions.values())).shape[0]
    base = float(errors_at(model, stack([w]), x, y)[1][0])

    def moved(r: torch.Tensor) -> torch.Tensor:
        at = {k: w[k] + r.view(-1, *[1] * w[k].dim()).to(w[k]) * d for k, d in directions.items()}
        return (errors_at(model, at, x, y)[1] - base).abs() > epsilon

    radii = scan_radii(r_max, r_tol)
    first = torch.full((count,), -1)  # per direction, the first scan point past epsilon
    for k, r in enumerate(radii):
        first = torch.where((first < 0) & moved(torch.full((count,), float(r))), k, first)
        if bool((first >= 0).all()):
            break
    censored = first < 0
    first = first.clamp(min=0)
    grid = torch.as_tensor(radii)
    hi = grid[first]
    lo = torch.where(first > 0, grid[(first - 1).clamp(min=0)], torch.zeros_like(hi))
    while float((hi - lo).max()) > r_tol:
        mid = (lo + hi) / 2
        out = moved(mid)
        hi, lo = torch.where(out, mid, hi), torch.where(out, lo, mid)
    radius = torch.where(censored, torch.full_like(hi, r_max), lo)
    return radius.numpy(), censored.numpy(), base
