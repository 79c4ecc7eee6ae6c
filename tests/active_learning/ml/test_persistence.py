"""Tests for active_learning.ml.persistence: skops round trips, allow-list, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from active_learning.ml.classifiers import make_classifier
from active_learning.ml.persistence import (
    UntrustedModelError,
    load_model,
    save_model,
    untrusted_types,
)


class Sneaky(BaseEstimator):
    """A type no allow-list names."""

    def fit(self, X, y):
        return self


def fitted(kind: str = "logreg", calibration: str | None = "temperature"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    model = make_classifier(kind, classes=["a", "b", "c", "d"], calibration=calibration,
                            C=1.0, random_state=0)  # fmt: skip
    return model.fit(X, y), X


@pytest.mark.parametrize(
    ("kind", "calibration"),
    [("logreg", "temperature"), ("logreg", "sigmoid"), ("linear_svm", None), ("mlp", None)],
)
def test_round_trip_keeps_predictions(tmp_path, kind, calibration):
    """A saved and reloaded model predicts exactly the same probabilities."""
    model, X = fitted(kind, calibration)
    path = save_model(model, tmp_path / "models" / "v1.skops")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert list(loaded.classes_) == ["a", "b", "c", "d"]


def test_round_trip_of_a_model_with_a_one_label_class(tmp_path):
    """A temperature fitted beside one estimator (a one-label class) survives the round trip."""
    model, X = fitted()
    y = model.predict(X)
    y[0] = "d"  # a single label
    model.fit(X, y)
    assert model.estimator_.beta_ is not None
    loaded = load_model(save_model(model, tmp_path / "v2.skops"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_unlisted_type_is_refused(tmp_path):
    """A file naming a type outside the allow-list is refused before anything is built."""
    path = save_model(Sneaky(), tmp_path / "sneaky.skops")
    name = f"{__name__}.Sneaky"
    assert name in untrusted_types(path)
    with pytest.raises(UntrustedModelError, match="outside the allow-list") as info:
        load_model(path)
    assert info.value.types == [name]
    assert isinstance(load_model(path, extra_trusted=[name]), Sneaky)


def test_save_is_atomic_and_replaces(tmp_path):
    """Saving over a file replaces it and leaves no temporary file behind."""
    first, X = fitted("logreg", None)
    second, _ = fitted("linear_svm", None)
    path = tmp_path / "model.skops"
    save_model(first, path)
    save_model(second, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.skops"]
    np.testing.assert_array_equal(load_model(path).predict_proba(X), second.predict_proba(X))
