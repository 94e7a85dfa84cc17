"""Noisy gradient descent on potentials with minima of equal depth (memo073 Figs 7-10,
memo100 Fig 2).

All samplers run many independent chains at once (arrays of shape chains x D) on a
periodic box, the memos' setting: a torus keeps the weights bounded (memo073 section 3).
GDL is w <- w - eta grad U(w) + sigma xi, whose stationary law is the Boltzmann
distribution exp(-U/T) with T = sigma^2 / (2 eta).

The chains are numpy arrays on the CPU, or torch tensors on a GPU when the profile's device
is one (``chain_device``): the potentials' code serves both through ``_exp`` and ``_rowsum``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate


def chain_device(device) -> str | None:
    """Where chains run: a CUDA device as torch tensors, else None (numpy). On the CPU numpy
    is as fast for these small arrays and keeps the numbers of earlier builds."""
    return str(device) if str(device).startswith("cuda") else None


def _is_tensor(x) -> bool:
    return not isinstance(x, np.ndarray) and hasattr(x, "device")


def _exp(x):
    return x.exp() if _is_tensor(x) else np.exp(x)


def _rowsum(x):
    """Sum over the coordinates (axis 1), kept as a column."""
    return x.sum(1, keepdim=True) if _is_tensor(x) else x.sum(1, keepdims=True)


def wrap(d, box: float):
    """Shortest periodic displacement."""
    return (d + box / 2) % box - box / 2


@dataclass(frozen=True)
class TwoWells:
    """memo073 Fig 7: U = 1 - exp(-|w-a|^2 / 2 s_a^2) - exp(-|w-b|^2 / 2 s_b^2), every coordinate
    of the centres equal; the well at b is ``s_b / s_a`` times wider per dimension."""
    a: float = 4.0
    b: float = 12.0
    s_a: float = 1.0
    s_b: float = 2.0
    box: float = 18.0

    def U(self, w):
        da, db = wrap(w - self.a, self.box), wrap(w - self.b, self.box)
        return 1 - _exp(-(da**2).sum(1) / (2 * self.s_a**2)) - _exp(-(db**2).sum(1) / (2 * self.s_b**2))

    def grad(self, w):
        da, db = wrap(w - self.a, self.box), wrap(w - self.b, self.box)
        ga = _exp(-_rowsum(da**2) / (2 * self.s_a**2))
        gb = _exp(-_rowsum(db**2) / (2 * self.s_b**2))
        return ga * da / self.s_a**2 + gb * db / self.s_b**2

    def in_flat(self, w):
        """Samples nearer (in units of each well's width) to the flat minimum."""
        da = np.sqrt((wrap(w - self.a, self.box) ** 2).sum(1)) / self.s_a
        db = np.sqrt((wrap(w - self.b, self.box) ** 2).sum(1)) / self.s_b
        return db < da


@dataclass(frozen=True)
class ValleyAndPoint:
    """memo073 Figs 8-10: a degenerate minimum (a valley w1 = v, flat in every other
    coordinate) and a non-degenerate one (the point p, p, ..., p), of equal depth 0."""
    v: float = 2.5
    p: float = 7.5
    s: float = 1.0
    box: float = 10.0

    def U(self, w):
        dv, dp = wrap(w[:, 0] - self.v, self.box), wrap(w - self.p, self.box)
        return 1 - _exp(-dv**2 / (2 * self.s**2)) - _exp(-(dp**2).sum(1) / (2 * self.s**2))

    def grad(self, w):
        dv = wrap(w[:, :1] - self.v, self.box)
        dp = wrap(w - self.p, self.box)
        gv = _exp(-(dv**2) / (2 * self.s**2))
        gp = _exp(-_rowsum(dp**2) / (2 * self.s**2))
        g = gp * dp / self.s**2
        g[:, :1] += gv * dv / self.s**2
        return g

    def in_flat(self, w):
        """Samples in the degenerate valley's half of the first coordinate."""
        return np.abs(wrap(w[:, 0] - self.v, self.box)) < np.abs(wrap(w[:, 0] - self.p, self.box))


def run_chains(grad, w0: np.ndarray, steps: int, eta: float, sigma: float, rng, box: float | None = None,
               record_every: int = 10, burn_in: float = 0.5, grad_noise=None, device: str | None = None):
    """Noisy gradient descent on many chains; returns the recorded states after burn-in as
    a numpy array of shape (records, chains, D). ``grad_noise(w, rng)``, if given, replaces
    the exact gradient by a stochastic (minibatch) one. With ``device`` (a torch device)
    the chains are float64 tensors there, their noise drawn by a torch generator seeded
    from ``rng``."""
    if device is None:
        w, normal = np.array(w0, dtype=float), rng.standard_normal
    else:
        import torch

        gen = torch.Generator(device=device)
        gen.manual_seed(int(rng.integers(2**62)))
        w = torch.as_tensor(np.asarray(w0, dtype=float), device=device)
        rng = gen  # what grad_noise draws from

        def normal(shape):
            return torch.randn(shape, generator=gen, device=device, dtype=w.dtype)
    keep_from = int(steps * burn_in)
    out = []
    for t in range(steps):
        g = grad(w) if grad_noise is None else grad_noise(w, rng)
        w = w - eta * g
        if sigma:
            w = w + sigma * normal(w.shape)
        if box is not None:
            w %= box
        if t >= keep_from and (t - keep_from) % record_every == 0:
            out.append(w.copy() if device is None else w.clone())
    return np.stack(out) if device is None else torch.stack(out).cpu().numpy()


WELL_LEVEL = 0.5  # a sample is in a well where U < 0.5, halfway between the minima (0) and the plateau (1)


def basins(potential, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For states (records, chains, D): which samples sit in a well, and which of those in
    the flat (or degenerate) one. In high dimension much of the mass can sit on the plateau
    between the wells, where neither minimum has been selected; it is counted apart."""
    flat = states.reshape(-1, states.shape[-1])
    in_well = (potential.U(flat) < WELL_LEVEL).reshape(states.shape[:2])
    in_flat = potential.in_flat(flat).reshape(states.shape[:2]) & in_well
    return in_well, in_flat


def ratio_with_error(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """sum(num) / sum(den) over (records, chains) boolean arrays, with a standard error from
    the chains as independent units (delta method for a ratio estimator)."""
    n_c, d_c = num.sum(0).astype(float), den.sum(0).astype(float)
    r = n_c.sum() / d_c.sum()
    k = len(d_c)
    se = np.sqrt(((n_c - r * d_c) ** 2).sum() * k / (k - 1)) / d_c.sum()
    return float(r), float(se)


def share_with_error(flags: np.ndarray) -> tuple[float, float]:
    """Mean of a (records, chains) boolean array and its standard error, taking each
    chain's time average as one independent sample (chains are independent, records not)."""
    per_chain = flags.mean(0)
    return float(per_chain.mean()), float(per_chain.std(ddof=1) / np.sqrt(len(per_chain)))


def minibatch_gradient(potential, shifts: np.ndarray, batch: int):
    """SGD on U(w) = mean_i U0(w - z_i): each step averages the gradients of ``batch``
    randomly drawn data points z_i; the spread of the z_i is the minibatch noise."""
    like = _like(shifts)

    def grad(w, rng):
        z = like(w)
        if _is_tensor(w):
            import torch
            idx = torch.randint(0, len(z), (len(w), batch), generator=rng, device=w.device)
        else:
            idx = rng.integers(0, len(z), (len(w), batch))
        return sum(potential.grad(w - z[idx[:, j]]) for j in range(batch)) / batch
    return grad


def _like(a: np.ndarray):
    """A function of w giving ``a`` as an array of w's kind: itself, or a tensor on w's
    device, copied there once (not at every step)."""
    copies = {}

    def like(w):
        if not _is_tensor(w):
            return a
        if w.device not in copies:
            import torch
            copies[w.device] = torch.as_tensor(a, dtype=w.dtype, device=w.device)
        return copies[w.device]
    return like


# --- a case with a known answer ---------------------------------------------------------

def double_well(x, tilt: float = 0.25):
    return (x**2 - 1) ** 2 + tilt * x


def double_well_grad(x, tilt: float = 0.25):
    return 4 * x * (x**2 - 1) + tilt


def boltzmann_right_share(T: float, tilt: float = 0.25, lim: float = 4.0) -> float:
    """Exact mass of exp(-U/T) on x > 0, by numerical integration."""
    f = lambda x: np.exp(-double_well(x, tilt) / T)  # noqa: E731
    right = integrate.quad(f, 0, lim)[0]
    left = integrate.quad(f, -lim, 0)[0]
    return right / (left + right)


def sampled_right_share(T: float, eta: float, steps: int, chains: int, seed: int, tilt: float = 0.25,
                        device: str | None = None):
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(2 * eta * T)
    states = run_chains(lambda w: double_well_grad(w, tilt), np.zeros((chains, 1)), steps, eta, sigma, rng,
                        record_every=20, burn_in=0.25, device=device)
    return share_with_error(states[:, :, 0] > 0)


# --- exact Boltzmann shares -----------------------------------------------------------------
# The wells are Gaussian bumps far apart (their overlap, and the corners of the torus beyond
# the inscribed ball, are neglected: both are below 1e-4 of the masses here). With
# U = 1 - g, e^{-U/T} = e^{-1/T} e^{g/T}; every mass below is given in units of e^{-1/T}.

def _ball(D: int) -> float:
    """Surface area of the unit sphere in R^D."""
    from math import gamma, pi
    return 2 * pi ** (D / 2) / gamma(D / 2)


def _radial(s: float, T: float, D: int, r_max: float, minus_one: bool = False) -> float:
    f = (lambda r: np.expm1(np.exp(-r**2 / (2 * s**2)) / T) * r ** (D - 1)) if minus_one else \
        (lambda r: np.exp(np.exp(-r**2 / (2 * s**2)) / T) * r ** (D - 1))
    return _ball(D) * integrate.quad(f, 0, r_max, limit=200)[0]


def _line(s: float, T: float, x_max: float, minus_one: bool = False) -> float:
    f = (lambda x: np.expm1(np.exp(-x**2 / (2 * s**2)) / T)) if minus_one else (lambda x: np.exp(np.exp(-x**2 / (2 * s**2)) / T))
    return 2 * integrate.quad(f, 0, x_max, limit=200)[0]


def exact_shares(potential, D: int, T: float) -> tuple[float, float]:
    """Boltzmann law exp(-U/T) on the torus, with :func:`basins`' definitions: the flat (or
    degenerate) minimum's share of the mass in the wells (U < WELL_LEVEL), and the share of
    all mass on the plateau (U >= WELL_LEVEL). Quadrature, in closed form up to 1D integrals."""
    cut = np.sqrt(2 * np.log(1 / (1 - WELL_LEVEL)))  # U < WELL_LEVEL within cut x the well's width
    box = potential.box
    if isinstance(potential, TwoWells):
        m_a = _radial(potential.s_a, T, D, cut * potential.s_a)
        m_b = _radial(potential.s_b, T, D, cut * potential.s_b)
        total = box**D + _radial(potential.s_a, T, D, box / 2, True) + _radial(potential.s_b, T, D, box / 2, True)
        narrow, flat = m_a, m_b
    elif isinstance(potential, ValleyAndPoint):
        s = potential.s
        flat = box ** (D - 1) * _line(s, T, cut * s)
        narrow = _radial(s, T, D, cut * s)
        total = box**D + box ** (D - 1) * _line(s, T, box / 2, True) + _radial(s, T, D, box / 2, True)
    else:
        raise TypeError(potential)
    return float(flat / (flat + narrow)), float(1 - (flat + narrow) / total)


def moves_per_chain(in_well: np.ndarray, in_flat: np.ndarray) -> np.ndarray:
    """For (records, chains) flags: how often each chain's well changes between recorded
    samples in wells (plateau samples skipped). A lower bound on the true number of moves:
    a chain that leaves and comes back between records is not seen."""
    label = np.where(in_well, in_flat.astype(int), -1)
    out = np.zeros(label.shape[1], int)
    for c in range(label.shape[1]):
        seq = label[:, c][label[:, c] >= 0]
        out[c] = int((np.diff(seq) != 0).sum())
    return out


def full_gradient(potential, shifts: np.ndarray):
    """Gradient of U(w) = mean_i U0(w - z_i) over every data point: noiseless GD on the
    potential SGD samples minibatches of."""
    like = _like(shifts)

    def grad(w):
        z = like(w)
        k, (c, d) = len(z), w.shape
        g = potential.grad((w[None] - z[:, None]).reshape(k * c, d))
        return g.reshape(k, c, d).mean(0)
    return grad


# --- SGD on a loss whose average is the potential itself (memo073 eqs. 6-8) -------------------

def _bump(d, s: float):
    return _exp(-(d**2) / (2 * s**2))


def copies_mean_U(potential: ValleyAndPoint, w, a, b):
    """The average over the product set of shifts {(a_j, b_k)} of the shifted copies
    U0(w - z): in 2D both bumps factor over the coordinates, so the mean of n = len(a) x len(b)
    copies costs len(a) + len(b) one-dimensional terms, exactly (no table)."""
    s, box = potential.s, potential.box
    dv = wrap(w[:, :1] - a[None, :] - potential.v, box)
    d1 = wrap(w[:, :1] - a[None, :] - potential.p, box)
    d2 = wrap(w[:, 1:2] - b[None, :] - potential.p, box)
    return 1 - _bump(dv, s).mean(1) - _bump(d1, s).mean(1) * _bump(d2, s).mean(1)


def copies_mean_grad(potential: ValleyAndPoint, w, a, b):
    """Gradient of :func:`copies_mean_U`, exactly, by the same factoring."""
    s, box = potential.s, potential.box
    dv = wrap(w[:, :1] - a[None, :] - potential.v, box)
    d1 = wrap(w[:, :1] - a[None, :] - potential.p, box)
    d2 = wrap(w[:, 1:2] - b[None, :] - potential.p, box)
    e1, e2 = _bump(d1, s), _bump(d2, s)
    g1 = (_bump(dv, s) * dv).mean(1, keepdims=True) if not _is_tensor(w) else (_bump(dv, s) * dv).mean(1, keepdim=True)
    m1 = (e1 * d1).mean(1) / s**2
    m2 = (e2 * d2).mean(1) / s**2
    g = w * 0
    g[:, 0] = g1[:, 0] / s**2 + m1 * e2.mean(1)
    g[:, 1] = e1.mean(1) * m2
    return g


def zero_mean_minibatch_gradient(potential: ValleyAndPoint, a: np.ndarray, b: np.ndarray, batch: int):
    """SGD on n = len(a) x len(b) per-example losses V_i(w) = U0(w) + U0(w - z_i) - mean_j U0(w - z_j),
    z_i on the product set of shifts {(a_j, b_k)}. Their average is U0 itself, exactly, whatever
    the shifts: the minibatch gradient is grad U0 plus xi = (mean over the batch of
    grad U0(w - z_i)) - mean_j grad U0(w - z_j), noise of mean 0 (memo073 eqs. 7-8) whose law is
    that of a shifted copy about the copies' average. With every shift 0 (spread 0) xi = 0 and
    the step is plain GD on U0."""
    like_a, like_b = _like(np.asarray(a, float)), _like(np.asarray(b, float))
    m_a, m_b = len(a), len(b)

    def grad(w, rng):
        aa, bb = like_a(w), like_b(w)
        if _is_tensor(w):
            import torch
            ia = torch.randint(0, m_a, (len(w), batch), generator=rng, device=w.device)
            ib = torch.randint(0, m_b, (len(w), batch), generator=rng, device=w.device)
            z = lambda j: torch.stack([aa[ia[:, j]], bb[ib[:, j]]], 1)  # noqa: E731
        else:
            ia, ib = rng.integers(0, m_a, (len(w), batch)), rng.integers(0, m_b, (len(w), batch))
            z = lambda j: np.stack([aa[ia[:, j]], bb[ib[:, j]]], 1)  # noqa: E731
        sampled = sum(potential.grad(w - z(j)) for j in range(batch)) / batch
        return potential.grad(w) + sampled - copies_mean_grad(potential, w, aa, bb)
    return grad


def averaged_depths(potential: ValleyAndPoint, a: np.ndarray, b: np.ndarray, grid: int = 100) -> dict:
    """Depths (plateau level 1 minus the minimum, within each basin as :meth:`in_flat` splits
    them) of the per-example losses' average, evaluated on a grid over the box by brute force
    over every example (not through the factoring the sampler uses), and of the average of the
    shifted copies alone (the earlier noise model, whose mean is U0 smoothed by the shifts).
    The grid (step box / grid) holds both minima of U0."""
    x = np.linspace(0, potential.box, grid, endpoint=False)
    w = np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2)
    z = np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)
    copies = np.mean([potential.U(w - zi) for zi in z], axis=0)
    average = potential.U(w) + copies - copies_mean_U(potential, w, a, b)  # the mean over i of V_i(w)
    flat = potential.in_flat(w)
    out = {}
    for name, u in [("", average), ("copies_", copies)]:
        out[name + "valley"] = float(1 - u[flat].min())
        out[name + "point"] = float(1 - u[~flat].min())
    return out


# --- starts drawn from the Boltzmann law ----------------------------------------------------------

def boltzmann_starts(potential, D: int, T: float, n: int, rng, batch: int = 200_000) -> np.ndarray:
    """n exact draws from exp(-U/T) on the box [0, box)^D, by rejection from the uniform law:
    accept w with probability exp(-(U(w) - U_low)/T), U_low a bound below the minimum (the
    wells' centres' value less a margin), so the accepted draws follow exp(-U/T) exactly."""
    centres = np.array([[potential.a] * D, [potential.b] * D], float) if isinstance(potential, TwoWells) else None
    low = float(np.min(potential.U(centres))) - 0.01 if centres is not None else -0.01
    out, got = [], 0
    while got < n:
        w = rng.uniform(0, potential.box, (batch, D))
        keep = w[rng.uniform(size=batch) < np.exp(-(potential.U(w) - low) / T)]
        out.append(keep)
        got += len(keep)
    return np.concatenate(out)[:n]
