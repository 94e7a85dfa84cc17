"""Deep vs shallow approximation of a hierarchically compositional function (memo100 Fig 1,
Theorems 1-2; the slides).

The target of n = 2^L variables is a binary tree of smooth 2-variable constituents,
after the authors' settings (docs/CATALOG.md): h1 = 0.59 cos(1.5 pi (x + y)) at the root, and below it
h(x, y) = 2 ((x + y + 2) / 4)^2 - 1, the memos' quadratic 1.1 (x + y + 1)^2 - 1 rescaled so
that every constituent maps [-1, 1]^2 into [-1, 1] and the tree stays in range.
The deep net mirrors the tree (each node a 2 -> k -> 1 ReLU net, "local" and deep); the
shallow net is one hidden ReLU layer on all n inputs, of a matched parameter count.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def quadratic(x, y):
    return 2 * ((x + y + 2) / 4) ** 2 - 1


def root(x, y):
    return 0.59 * torch.cos(1.5 * math.pi * (x + y))


def target(x: torch.Tensor) -> torch.Tensor:
    """f(x1..xn) for n a power of 2, by pairing adjacent values level by level."""
    h = x
    while h.shape[1] > 2:
        h = quadratic(h[:, 0::2], h[:, 1::2])
    return root(h[:, 0], h[:, 1])


class TreeNet(nn.Module):
    """Binary-tree network: level l holds n / 2^l nodes, each a 2 -> k -> 1 ReLU net."""

    def __init__(self, n: int, k: int, gen: torch.Generator):
        super().__init__()
        self.levels = nn.ModuleList()
        nodes = n // 2
        while nodes >= 1:
            level = nn.ParameterDict({
                "w1": nn.Parameter(torch.randn(nodes, k, 2, generator=gen) / math.sqrt(2)),
                "b1": nn.Parameter(torch.zeros(nodes, k)),
                "w2": nn.Parameter(torch.randn(nodes, k, generator=gen) / math.sqrt(k)),
                "b2": nn.Parameter(torch.zeros(nodes)),
            })
            self.levels.append(level)
            nodes //= 2

    def forward(self, x):
        # Each level's nodes as one batched matrix product (node-major): what einsum would
        # dispatch to, without its permutes and copies, which cost more than the products
        # at these sizes (the same numbers, twice as fast for small k).
        h = x
        for p in self.levels:
            pairs = h.view(len(h), -1, 2).transpose(0, 1)                            # (nodes, batch, 2)
            hidden = torch.relu(torch.baddbmm(p["b1"].unsqueeze(1), pairs, p["w1"].transpose(1, 2)))  # (nodes, batch, k)
            h = (torch.bmm(hidden, p["w2"].unsqueeze(2)).squeeze(2) + p["b2"].unsqueeze(1)).transpose(0, 1)
        return h[:, 0]


def shallow_net(n: int, m: int, gen: torch.Generator) -> nn.Module:
    net = nn.Sequential(nn.Linear(n, m), nn.ReLU(), nn.Linear(m, 1), nn.Flatten(0))
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(m, n, generator=gen) / math.sqrt(n))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.randn(1, m, generator=gen) / math.sqrt(m))
        net[2].bias.zero_()
    return net


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def tree_params(n: int, k: int) -> int:
    return (n - 1) * (4 * k + 1)


def matched_shallow_width(n: int, params: int) -> int:
    """Hidden units m with m (n + 2) + 1 closest to ``params``."""
    return max(1, round((params - 1) / (n + 2)))


def sample(n: int, count: int, gen: torch.Generator):
    x = torch.rand(count, n, generator=gen) * 2 - 1
    return x, target(x)


def fit(net: nn.Module, x, y, x_val, y_val, x_test, y_test, steps: int, lr: float, every: int = 50):
    """Full-batch Adam with a cosine schedule, evaluated every ``every`` steps. The stopping
    step is the evaluation with the best validation MSE; returns (validation MSE, that step,
    test MSE at that step, its standard error over the test points, training MSE at that step)."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    best = (float("inf"), 0, float("nan"), float("nan"), float("nan"))
    for t in range(steps):
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if t % every == every - 1 or t == steps - 1:
            with torch.no_grad():
                val = float(((net(x_val) - y_val) ** 2).mean())
                if val < best[0]:
                    sq = (net(x_test) - y_test) ** 2
                    best = (val, t + 1, float(sq.mean()), float(sq.std() / math.sqrt(len(sq))),
                            float(((net(x) - y) ** 2).mean()))
    return best


def _train(kind, n, size, lrs, steps, data, seed):
    """The net of ``kind`` and ``size`` (k per tree node, or m hidden units) at the learning
    rate with the best validation MSE; test and training MSE at its validation-chosen stopping step."""
    best = None
    for lr in lrs:
        g = torch.Generator().manual_seed(seed * 1000 + size)  # init drawn on the CPU: the same on any device
        net = (TreeNet(n, size, g) if kind == "deep" else shallow_net(n, size, g)).to(data[0].device)
        val, step, test, test_se, train = fit(net, *data, steps, lr)
        if best is None or val < best[0]:
            best = (val, step, test, test_se, train, lr, n_params(net))
    return best


def compare(n: int, ks: list[int], lrs: list[float], steps: int, n_train: int, n_test: int, seed: int,
            error: float | None = None, shallow_max_params: int | None = None, device: str = "cpu") -> list[dict]:
    """Test and training MSE (relative to the target's variance; the test MSE with its standard
    error over the test points) of tree and shallow nets at matched parameter counts; each net's learning rate and stopping step are chosen on a validation
    set. With ``error`` and ``shallow_max_params``, the shallow grid then doubles its
    parameter count until a shallow net reaches ``error`` or the next count passes the ceiling.
    Data are drawn on the CPU and trained on ``device`` (full-batch: the paper profile's
    60,000 points and many nets are the GPU's kind of work)."""
    gen = torch.Generator().manual_seed(seed)
    x, y = sample(n, n_train, gen)
    x_val, y_val = sample(n, n_test, gen)
    x_test, y_test = sample(n, n_test, gen)
    var = float(y_test.var())
    data = tuple(t.to(device) for t in (x, y, x_val, y_val, x_test, y_test))
    rows = []

    def row(kind, size, grid, k=None):
        val, step, test, test_se, train, lr, params = _train(kind, n, size, lrs, steps, data, seed)
        rows.append({"n": n, "k": k, "net": kind, "grid": grid, "width": size, "params": params, "lr": lr, "stop_step": step,
                     "train_mse": train / var, "val_mse": val / var, "test_mse": test / var, "test_mse_se": test_se / var})
        return test / var

    for k in ks:
        row("deep", k, "matched", k)
        row("shallow", matched_shallow_width(n, tree_params(n, k)), "matched", k)
    if error is not None and shallow_max_params is not None:
        shallow = [r for r in rows if r["net"] == "shallow"]
        reached = any(r["test_mse"] <= error for r in shallow)
        params = max(r["params"] for r in shallow)
        while not reached and 2 * params <= shallow_max_params:
            m = matched_shallow_width(n, 2 * params)
            reached = row("shallow", m, "extended") <= error
            params = rows[-1]["params"]
    return rows
