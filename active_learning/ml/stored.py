"""Uncertainty of stored predictions that keep only their most probable classes.

A stored prediction holds a row's top probabilities (the top-k of a full row, or the top two a
compact row implies), not the whole distribution. ``top`` is an ``(m, t)`` array of those
probabilities, best first, NaN where a row knows fewer than ``t``. numpy only: web processes
use it to top up the queue from stored scores.
"""

from __future__ import annotations

import numpy as np


def entropy_from_top(top: np.ndarray, n_classes: int) -> np.ndarray:
    """Shannon entropy (nats) of rows known by their top probabilities; higher is more informative.

    The mass the known classes leave is spread evenly over the row's other classes: the largest
    entropy the stored probabilities allow, and the exact entropy when they are the whole row.
    Source: Shannon (1948); as a query measure Settles (2009), *Active Learning Literature
    Survey*, §3.1.

    Parameters
    ----------
    top : ndarray of shape (m, t)
        Known probabilities, best first; NaN past a row's last known class.
    n_classes : int
        Classes of the model (K >= t).

    Returns
    -------
    ndarray of shape (m,)
    """
    top = np.asarray(top, dtype=np.float64)
    if top.ndim != 2:
        raise ValueError(f"top must be (m, t); got shape {top.shape}")
    known = ~np.isnan(top)
    p = np.clip(np.where(known, top, 0.0), 0.0, 1.0)
    logs = np.log(np.where(p > 0, p, 1.0))
    h = -(p * logs).sum(axis=1)
    rest = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    others = n_classes - known.sum(axis=1)
    spread = (rest > 0) & (others > 0)
    each = np.where(spread, rest / np.maximum(others, 1), 1.0)
    return h - np.where(spread, rest * np.log(each), 0.0)
