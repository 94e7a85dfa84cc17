"""Linear models under gradient descent: the minimum-norm solution of underdetermined least
squares (memo073 section 9.6) and the implicit bias of exponential-type losses on
separable data toward the hard-margin SVM (memo100 section 3.F; Soudry et al. in the slides).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

# --- minimum norm ----------------------------------------------------------------------


def least_squares(n: int, d: int, rng) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((n, d)) / np.sqrt(d), rng.standard_normal(n)


def null_space_part(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Component of w that X cannot see: (I - X^+ X) w."""
    return w - np.linalg.pinv(X) @ (X @ w)


def gd_least_squares(X, y, w0, steps: int, batch: int | None, rng, record_every: int = 10):
    """(S)GD on 1/2n |Xw - y|^2 with step 1/L, L the largest curvature. ``batch`` None: full
    gradient; else that many rows per step. Returns the final w and the recorded iterates."""
    n = len(y)
    L = np.linalg.eigvalsh(X.T @ X / n).max() if batch is None else (X**2).sum(1).max()
    eta = 1.0 / L
    w, trace = w0.astype(float).copy(), []
    for t in range(steps):
        rows = slice(None) if batch is None else rng.integers(0, n, batch)
        Xb, yb = X[rows], y[rows]
        w -= eta * Xb.T @ (Xb @ w - yb) / len(yb)
        if t % record_every == 0:
            trace.append((t, w.copy()))
    return w, trace


# --- separable classification ------------------------------------------------------------


def separable_blobs(n: int, d: int, margin: float, rng, single_support: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds on either side of a random hyperplane through 0, at least
    ``margin`` from it: linearly separable by a homogeneous (bias-free) predictor.

    ``single_support``: the hard-margin SVM has one support vector (the case memo100
    section 3.F works out for weight normalization). The first point is ``margin`` u, on the
    normal u itself, and every other point lies at least 2 ``margin`` from the hyperplane;
    then w_svm = u / ``margin`` and only the first point's constraint is active."""
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d))
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    floor = 2 * margin if single_support else margin
    X += (floor + np.abs(X @ u))[:, None] * u * y[:, None] - (X @ u)[:, None] * u
    if single_support:
        X[0] = margin * u
    return X, y


def hard_margin_svm(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """min |w|^2 s.t. y_i <w, x_i> >= 1, solved as a quadratic program (SLSQP), independently
    of any gradient-descent path."""
    d = X.shape[1]
    w0 = np.linalg.lstsq(X, y, rcond=None)[0]
    w0 /= max(1e-12, (y * (X @ w0)).min())
    res = optimize.minimize(lambda w: 0.5 * w @ w, w0, jac=lambda w: w, method="SLSQP",
                            constraints=[{"type": "ineq", "fun": lambda w: y * (X @ w) - 1,
                                          "jac": lambda w: y[:, None] * X}],
                            options={"ftol": 1e-14, "maxiter": 1000})
    if not res.success:
        raise RuntimeError(f"SVM quadratic program failed: {res.message}")
    return res.x.reshape(d)


def support_vectors(X: np.ndarray, y: np.ndarray, w_svm: np.ndarray, rtol: float = 1e-6) -> int:
    """How many points lie on the hard-margin SVM's margin: y_i <w_svm, x_i> = 1 within ``rtol``."""
    return int((np.abs(y * (X @ w_svm) - 1) <= rtol).sum())


def loss_grad(loss: str, margins: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss over margins m_i = y_i f(x_i) and its derivative in each m_i."""
    if loss == "exp":
        e = np.exp(-margins)
        return float(e.mean()), -e / len(margins)
    if loss == "logistic":
        return float(np.logaddexp(0, -margins).mean()), -0.5 * (1 - np.tanh(margins / 2)) / len(margins)
    raise ValueError(f"loss must be 'exp' or 'logistic', not {loss!r}")


def angle(u: np.ndarray, v: np.ndarray) -> float:
    c = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.arccos(np.clip(c, -1, 1)))


def log_times(steps: int, points: int = 60) -> set[int]:
    return set(np.unique(np.geomspace(1, steps, points).astype(int)).tolist())


def gd_linear(X, y, loss: str, steps: int, eta: float, weight_norm: bool = False, w0=None):
    """GD on a linear classifier from w0 (default 0). With ``weight_norm`` the weights are
    w = g v / |v| and GD runs on (g, v). Records (t, w, loss) at log-spaced t."""
    d = X.shape[1]
    w = np.zeros(d) if w0 is None else np.array(w0, float)
    if weight_norm:
        v = w.copy() if np.linalg.norm(w) > 0 else np.full(d, 1e-3)
        g = float(np.linalg.norm(w))
    marks, trace = log_times(steps), []
    for t in range(1, steps + 1):
        value, dm = loss_grad(loss, y * (X @ w))
        grad_w = X.T @ (dm * y)
        if weight_norm:
            nv = np.linalg.norm(v)
            u = v / nv
            g_new = g - eta * grad_w @ u
            v = v - eta * (g / nv) * (grad_w - (grad_w @ u) * u)
            g = g_new
            w = g * v / np.linalg.norm(v)
        else:
            w = w - eta * grad_w
        if t in marks:
            trace.append((t, w.copy(), value))
    return w, trace


def nonseparable_blobs(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping 2D clouds, with a constant feature for the bias."""
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    X = rng.standard_normal((n, 2)) + 0.8 * y[:, None] * np.array([1.0, 0.5])
    return np.hstack([X, np.ones((n, 1))]), y
