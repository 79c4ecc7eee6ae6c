"""A calibrator that fails to converge leaves a working, uncalibrated model that says why."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from active_learning.ml.calibration import CalibratedClassifier


def test_failed_temperature_search_falls_back_to_uncalibrated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int)

    def fail(self, *args, **kwargs):  # what scikit-learn raises when minimize_scalar gets NaN
        raise RuntimeError("Temperature scaling fails to optimize during calibration.")

    monkeypatch.setattr(CalibratedClassifierCV, "fit", fail)
    model = CalibratedClassifier(LogisticRegression(), method="temperature").fit(X, y)
    assert model.method_ == "none"
    assert "calibration failed: Temperature scaling fails" in model.fallback_reason_
    proba = model.predict_proba(X)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(axis=1), 1)
    assert (model.predict(X) == y).mean() > 0.9
