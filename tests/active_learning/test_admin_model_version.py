"""The admin's model version page is readable: metrics as tables with class names, the decision
in words, and the training case ids collapsed (issue 17)."""

from __future__ import annotations

import html as html_lib

import pytest
from django.urls import reverse

from active_learning.models import ModelStatus, ModelVersion
from labeling.models import Tier
from tests.factories import LabelClassFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def _point(name, **extra):
    return {
        "name": name, "target_precision": 0.99, "confidence": 0.95, "threshold": 0.8,
        "precision": 0.995, "precision_ci": [0.97, 1.0], "precision_lower_bound": 0.97,
        "recall": 0.6, "recall_ci": [0.45, 0.74], "n_samples": 400, "n_positives": 40,
        "n_predicted": 24, "n_true_positives": 24, "enough_evidence": False,
        "reason": "precision lower bound 0.9700 < 0.99 with 24 cases above the threshold",
        "more_positives_needed": 300, "more_labels_needed": 3000, **extra,
    }  # fmt: skip


def test_model_version_page_shows_tables_with_class_names(admin_client) -> None:
    project = ProjectFactory()
    retail = LabelClassFactory(project=project, name="Retail", tier=Tier.SUPPORTABLE)
    guns = LabelClassFactory(project=project, name="Firearms", tier=Tier.PROHIBITED)
    metrics = {
        "n_samples": 400, "accuracy": 0.9, "macro_f1": 0.8123, "macro_f1_ci": [0.78, 0.84],
        "ece": 0.031, "brier": 0.12, "weighted": False,
        "per_class": [
            {"name": str(retail.pk), "precision": 0.9, "recall": 0.95, "f1": 0.92, "support": 360},
            {"name": str(guns.pk), "precision": 0.8, "recall": 0.6, "f1": 0.69, "support": 40},
        ],
        "per_tier": [{"name": "prohibited", "precision": 0.8, "recall": 0.6, "f1": 0.69, "support": 40}],
        "class_operating_points": [_point(str(guns.pk))],
        "tier_operating_points": [_point("prohibited")],
        "eval_labels_per_class": {str(retail.pk): 360, str(guns.pk): 40},
    }  # fmt: skip
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelStatus.CHAMPION,
        metrics=metrics,
        decision={"promote": True, "reason": "promoted: there is no champion yet"},
        decision_reason="promoted: there is no champion yet",
        snapshot_case_ids=list(range(1000, 4500)),
    )
    url = reverse("admin:active_learning_modelversion_change", args=[version.pk])
    page = html_lib.unescape(admin_client.get(url).content.decode())
    assert '<th scope="col">class</th>' in page
    assert "<td>Firearms</td>" in page and "<td>Retail</td>" in page
    assert "0.812 (0.780 to 0.840)" in page
    assert "not enough evidence (precision lower bound" in page
    assert "v1 was promoted: promoted: there is no champion yet" in page
    assert "<details><summary>3500 case ids (show)</summary>" in page
    # The raw JSON blob of metrics is gone from the page.
    assert '"per_class"' not in page and "&quot;per_class&quot;" not in page
