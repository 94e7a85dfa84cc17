"""The loss-trend statistic: how far a loss still falls over a window. The plateau stop
rule reads it, and the claims read it from every row (``loss_drop_last_fifth``)."""

from __future__ import annotations

import numpy as np


def relative_fall(window) -> float:
    """The fall of a loss over ``window`` relative to its mean, read from a least-squares line
    (single epochs of SGD are too noisy to compare two of them). nan if not finite."""
    window = np.asarray(window, float)
    if len(window) < 2 or not np.isfinite(window).all():
        return float("nan")
    mean = float(window.mean())
    if mean <= 0:
        return 0.0
    slope = np.polyfit(np.arange(len(window)), window, 1)[0]
    return float(-slope * (len(window) - 1) / mean)


def loss_drop_last_fifth(curve: list[float]) -> float:
    """Relative fall of the per-epoch training loss over the last fifth of the epochs: how
    far from levelled off a run was when it stopped (claims call a run still falling past
    config ``claims.still_falling``). Read from a least-squares line through those epochs,
    as the fitted fall over the window relative to its mean loss: SGD at a constant step
    makes single epochs too noisy to compare (one run's two-point reading swung from +0.66
    to -3.8 between neighbouring evaluations)."""
    if len(curve) < 5:
        return float("nan")
    return relative_fall(curve[-max(2, len(curve) // 5):])
