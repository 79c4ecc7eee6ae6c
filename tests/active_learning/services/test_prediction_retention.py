"""Prediction volume stays bounded: full coverage for the last two champions only; older
versions keep just the stop set and the labelled evaluation cases (DESIGN)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from active_learning.models import ModelStatus, ModelVersion, Prediction
from active_learning.services.scoring import predictions_prune
from labeling.models import ResolvedLabel, Split
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def _in_stop_set(split_seed: int, case_id: int) -> bool:
    """The stop set written out from its definition (DESIGN): 1% of cases, drawn by a 64-bit
    blake2b of "<split seed>:stop-set:<case id>" as a fraction of 2**64."""
    key = f"{split_seed}:stop-set:{case_id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64 < 0.01


def test_prune_keeps_last_two_champions_whole_and_history_for_labelled_eval() -> None:
    project = ProjectFactory()
    label = LabelClassFactory(project=project)
    pool = CaseFactory.create_batch(300, project=project, split=Split.POOL)
    evaluation = CaseFactory.create_batch(300, project=project, split=Split.EVAL)
    labelled = evaluation[:20]
    for case in labelled:
        ResolvedLabel.objects.create(case=case, label=label, source="annotation")
    now = timezone.now()
    versions = []
    for n, status in enumerate(["retired", "retired", "retired", "champion"], start=1):
        versions.append(ModelVersion.objects.create(
            project=project, number=n, status=status, promoted_at=now + timedelta(minutes=n)))  # fmt: skip
    for version in versions:
        Prediction.objects.bulk_create(
            [Prediction(case=c, model_version=version, predicted_label=label, confidence=0.5)
             for c in pool]
            + [Prediction(case=c, model_version=version, predicted_label=label, confidence=0.5,
                          top_k=[[label.pk, 0.5]]) for c in evaluation]
        )  # fmt: skip
    # A seed that puts some unlabelled evaluation cases in the stop set, so both rules are seen.
    project.split_seed = next(
        seed for seed in range(10_000) if any(_in_stop_set(seed, c.pk) for c in evaluation[20:])
    )
    project.save(update_fields=["split_seed"])
    predictions_prune(project=project)

    for version in versions[2:]:  # the champion and the previous one: untouched
        assert Prediction.objects.filter(model_version=version).count() == 600
    stop = {c.pk for c in pool + evaluation if _in_stop_set(project.split_seed, c.pk)}
    expected = {c.pk for c in evaluation if c.pk in stop} | {c.pk for c in labelled}
    for version in versions[:2]:
        kept = set(
            Prediction.objects.filter(model_version=version).values_list("case_id", flat=True)
        )
        assert kept == expected
    assert ModelVersion.objects.get(pk=versions[-1].pk).status == ModelStatus.CHAMPION
