"""Test helpers for the pipeline: a project of generated merchants, and analysts' labels."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np
from django.contrib.auth import get_user_model

from active_learning.ml.hashing import content_hash
from active_learning.services.embeddings import (
    DatabaseEmbeddingCache,
    matrix_sync,
    model_name_current,
)
from labeling.models import Annotation, Case, LabelClass, Project, ResolvedLabel, SyntheticTruth
from labeling.services.projects import project_create
from labeling.splits import split_function
from labeling.synthetic import generate
from labeling.synthetic.taxonomy import label_class_specs

CLASS_FIELDS = ("name", "display_name", "tier", "description", "guideline", "shortcut_key")


def generated_project(
    *, n: int, noise: float = 0.2, seed: int = 7, slug: str | None = None, **settings
) -> Project:
    """A project with the taxonomy's classes and `n` generated cases (given labels noisy)."""
    classes = [{k: spec[k] for k in CLASS_FIELDS} for spec in label_class_specs()]  # type: ignore[literal-required]
    project = project_create(
        slug=slug or f"gen-{uuid.uuid4().hex[:8]}", classes=classes, settings=settings
    )
    # A fixed split seed: the same generated cases land in the same split in every run.
    Project.objects.filter(pk=project.pk).update(split_seed=seed * 7919 + 1)
    project.refresh_from_db()
    by_name = {c.name: c for c in LabelClass.objects.filter(project=project)}
    split = split_function(
        split_seed=project.split_seed, evaluation_fraction=project.evaluation_fraction
    )
    records = generate(n, seed=seed, noise=noise)
    cases = Case.objects.bulk_create(
        Case(
            project=project,
            external_id=r.external_id,
            text=r.text,
            metadata=r.metadata(),
            given_label=by_name[r.given_label],
            split=split(r.external_id),
            content_hash=content_hash(r.text),
        )
        for r in records
    )
    SyntheticTruth.objects.bulk_create(
        SyntheticTruth(case=c, true_label=by_name[r.true_label], noise_kind=r.noise_kind)
        for c, r in zip(cases, records, strict=True)
    )
    return project


def store_vectors(vectors: Mapping[str, np.ndarray]) -> None:
    """Chosen vectors for content hashes, stored and synced into the matrix file as an embedding
    run leaves them: tests give cases known features without running the encoder."""
    DatabaseEmbeddingCache().put_many(model_name_current(), vectors)
    matrix_sync()


def label_truthfully(
    *, project: Project, cases: list[Case], analyst=None, corrupt: bool = False
) -> None:
    """Analysts' labels equal to the synthetic truth (or deliberately wrong with `corrupt`)."""
    analyst = analyst or get_user_model().objects.get_or_create(username="oracle")[0]
    classes = list(LabelClass.objects.filter(project=project).order_by("order"))
    for case in cases:
        truth = case.synthetic_truth.true_label
        label = classes[(classes.index(truth) + 1) % len(classes)] if corrupt else truth
        Annotation.objects.create(
            case=case,
            annotator=analyst,
            label=label,
            submission_id=uuid.uuid4(),
            content_hash=case.content_hash,
        )
        ResolvedLabel.objects.update_or_create(
            case=case, defaults={"label": label, "source": "annotation", "agreement": 1.0}
        )
