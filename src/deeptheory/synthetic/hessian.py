"""The Hessian of the square loss of a small smooth net at the minimum it reaches (the slides'
"Over-parametric Landscapes: as p > n, equilibria are all degenerate").

The net is one hidden tanh layer with biases, f(x) = a . tanh(W x + b) + c, written as a
function of one flat parameter vector theta of length p, so that its Jacobian and the loss's
Hessian are plain matrices (torch.func). tanh, unlike ReLU, has no continuous symmetry
(rescaling a ReLU unit's input and output weights leaves f unchanged, a flat direction at
every point whatever n), so a degenerate direction here comes from the data count alone.

With the loss L(theta) = |f(X; theta) - y|^2 / (2 n) and the n x p Jacobian J of the outputs,
H = J^T J / n + (1/n) sum_i r_i Hess f_i (r the residuals). At a zero-loss minimum the second
term vanishes and rank H <= n (one output): at least p - n eigenvalues are zero.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import hessian, jacrev


def n_params(d: int, hidden: int) -> int:
    """p of the net on d inputs: W (hidden x d), b, a (hidden), c."""
    return hidden * (d + 2) + 1


def forward(theta: torch.Tensor, X: torch.Tensor, hidden: int) -> torch.Tensor:
    d = X.shape[1]
    W = theta[:hidden * d].reshape(hidden, d)
    b = theta[hidden * d:hidden * (d + 1)]
    a = theta[hidden * (d + 1):hidden * (d + 2)]
    return torch.tanh(X @ W.T + b) @ a + theta[-1]


def loss(theta, X, y, hidden: int):
    return 0.5 * ((forward(theta, X, hidden) - y) ** 2).mean()


def init(d: int, hidden: int, gen: torch.Generator) -> torch.Tensor:
    """Gaussian weights of variance 1 / fan-in, zero biases."""
    theta = torch.zeros(n_params(d, hidden), dtype=torch.float64)
    theta[:hidden * d] = torch.randn(hidden * d, generator=gen, dtype=torch.float64) / np.sqrt(d)
    theta[hidden * (d + 1):hidden * (d + 2)] = torch.randn(hidden, generator=gen, dtype=torch.float64) / np.sqrt(hidden)
    return theta


def teacher(d: int, hidden: int, gen: torch.Generator) -> torch.Tensor:
    """A net of the student's own shape with Gaussian biases (sd 0.5): its outputs are the
    targets, so a zero-loss minimum exists at every n (the teacher itself, up to the
    symmetries), and where n > p it is the one the rank bound no longer makes degenerate."""
    theta = init(d, hidden, gen)
    theta[hidden * d:hidden * (d + 1)] = 0.5 * torch.randn(hidden, generator=gen, dtype=torch.float64)
    theta[-1] = 0.5 * torch.randn(1, generator=gen, dtype=torch.float64)
    return theta


def data(n: int, d: int, theta_teacher, hidden: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard Gaussian inputs labelled by the teacher, without noise."""
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return X, forward(theta_teacher, X, hidden).detach()


def levenberg_marquardt(theta, X, y, hidden: int, steps: int, damping: float = 1e-3):
    """Damped Gauss-Newton on the residuals r = f(X; theta) - y: the step solves
    (J^T J + mu I) delta = -J^T r, mu shrinking on a step that lowers the loss and growing
    on one that does not. It reaches a zero-loss minimum to float64 precision in tens of
    steps where GD would need millions; the claim is about the minimum, not the path.
    Returns theta and the loss at each step."""
    jac = jacrev(lambda t: forward(t, X, hidden))
    cur = float(loss(theta, X, y, hidden))
    trace, mu = [cur], damping
    eye = torch.eye(theta.numel(), dtype=theta.dtype)
    for _ in range(steps):
        r = forward(theta, X, hidden) - y
        J = jac(theta)
        g = J.T @ r
        while mu < 1e12:
            cand = theta - torch.linalg.solve(J.T @ J + mu * eye, g)
            new = float(loss(cand, X, y, hidden))
            if new < cur:
                theta, cur, mu = cand, new, max(mu / 3, 1e-15)
                break
            mu *= 4
        trace.append(cur)
        if cur == 0.0 or mu >= 1e12:   # exact fit, or no step lowers the loss (a minimum to float64)
            break
    return theta, trace


def at_minimum(theta, X, y, hidden: int) -> dict:
    """Loss, gradient norm, the Hessian's eigenvalues (ascending) and the norm of its residual
    part H - J^T J / n, the one term that can lift the rank bound's zero eigenvalues."""
    f = lambda t: loss(t, X, y, hidden)   # noqa: E731
    H = hessian(f)(theta)
    J = jacrev(lambda t: forward(t, X, hidden))(theta)
    gauss_newton = J.T @ J / X.shape[0]
    grad = torch.func.grad(f)(theta)
    return {"loss": float(f(theta)), "grad_norm": float(grad.norm()),
            "eigenvalues": torch.linalg.eigvalsh(0.5 * (H + H.T)).numpy(),
            "residual_part": float(torch.linalg.matrix_norm(H - gauss_newton, ord=2)),
            "jacobian_rank": int(torch.linalg.matrix_rank(J))}


def near_zero(eigenvalues: np.ndarray, rtol: float) -> int:
    """Eigenvalues with |lambda| <= rtol x the largest |lambda|."""
    lam = np.abs(np.asarray(eigenvalues))
    return int((lam <= rtol * lam.max()).sum())
