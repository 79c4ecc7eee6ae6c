"""Label values are database ids, not 0..k-1: calibration must not depend on that."""

from __future__ import annotations

import numpy as np

from active_learning.ml.classifiers import make_classifier


def test_temperature_calibration_with_ids_as_labels_stays_confident() -> None:
    """Ids 1..20 once gave a temperature of 2e4 and flat 0.05 probabilities (the demo)."""
    rng = np.random.default_rng(0)
    k, n = 20, 3000
    centers = rng.normal(size=(k, 32))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(scale=1.5, size=(n, 32))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    flip = rng.random(n) < 0.2  # noisy labels, like imported ones
    y[flip] = rng.integers(0, k, flip.sum())
    ids = [101 + 7 * i for i in range(k)]  # what LabelClass primary keys look like
    labels = np.array(ids)[y]
    by_position = make_classifier(classes=list(range(k)), calibration="temperature", random_state=0)
    by_id = make_classifier(classes=ids, calibration="temperature", random_state=0)
    p_position = by_position.fit(X, y).predict_proba(X)
    p_id = by_id.fit(X, labels).predict_proba(X)
    assert p_id.max(axis=1).mean() > 0.5
    np.testing.assert_allclose(p_id, p_position, atol=1e-6)
