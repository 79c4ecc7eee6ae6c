"""Every model has a working admin: change list with rows, search, a filter, and a change page."""

from __future__ import annotations

import uuid

import pytest
from django.contrib import admin
from django.urls import reverse

from active_learning.models import (
    DashboardSnapshot,
    Embedding,
    EvaluationDesign,
    LabelIssue,
    LabelNoiseEstimate,
    ModelVersion,
    Prediction,
)
from labeling.models import (
    AgreementReport,
    AnnotatorReliability,
    CaseConsensus,
    QueueAction,
    QueueCursor,
    ResolvedLabel,
    SyntheticTruth,
)
from tests.factories import (
    AnnotationFactory,
    CaseFactory,
    LabelClassFactory,
    QueueItemFactory,
    UserFactory,
)
from workbench.core.audit import audit_record
from workbench.core.models import Job, Lease

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated(db):
    label = LabelClassFactory(name="gambling")
    case = CaseFactory(project=label.project, given_label=label, external_id="M-ADMIN-1")
    project = case.project
    user = UserFactory(username="alice")
    project.memberships.create(user=user, role="analyst")
    QueueItemFactory(case=case)
    annotation = AnnotationFactory(case=case, annotator=user, label=label, comment="looks fine")
    QueueCursor.objects.create(project=project, analyst=user, claims=3)
    QueueAction.objects.create(project=project, analyst=user, kind="label", annotation=annotation)
    SyntheticTruth.objects.create(case=case, true_label=label, noise_kind="none")
    ResolvedLabel.objects.create(case=case, label=label, source="annotation", confidence=1.0)
    audit_record(actor=user, action="test.event", obj=case, project=project)
    Embedding.objects.create(
        model_name="m", content_hash=case.content_hash, dim=2, vector=b"\0" * 8
    )
    version = ModelVersion.objects.create(project=project, number=1, status="ready")
    Prediction.objects.create(
        case=case, model_version=version, predicted_label=label, confidence=0.9
    )
    job = Job.objects.create(kind="retrain", project=project, message="hello")
    LabelIssue.objects.create(
        project=project,
        case=case,
        given_label=label,
        suggested_label=label,
        score=0.7,
        self_confidence=0.3,
        in_prune_set=True,
        job=job,
    )
    from django.utils import timezone

    LabelNoiseEstimate.objects.create(
        project=project, job=job, given_label=label, reviewed=4, wrong=1, excluded=1,
        measured_at=timezone.now(),
    )  # fmt: skip
    CaseConsensus.objects.create(
        project=project, case=case, label=label, posterior=0.7, analyst_labels=2,
        computed_at=timezone.now(),
    )  # fmt: skip
    AnnotatorReliability.objects.create(
        project=project, job=job, annotator=user, accuracy=0.9, labels=30,
        confusion={"classes": [label.pk], "matrix": [[1.0]]}, measured_at=timezone.now(),
    )  # fmt: skip
    AgreementReport.objects.create(
        project=project, job=job, alpha=0.7, alpha_low=0.6, alpha_high=0.8, cases=40,
        measured_at=timezone.now(),
    )  # fmt: skip
    EvaluationDesign.objects.create(project=project, case=case, stratum=label, size=0.01, key=3.2)
    DashboardSnapshot.objects.create(
        project=project, counted_at=timezone.now(), champion=version, counts={"cases": 1}
    )
    Lease.objects.create(
        name="retrain:1", holder=str(uuid.uuid4()), job=job, expires_at=timezone.now()
    )
    # A second project, so related-field filters have a choice to offer.
    other = CaseFactory(external_id="M-ADMIN-2")
    ModelVersion.objects.create(project=other.project, number=1, status="retired")
    return project


OUR_MODELS = [
    m for m in admin.site._registry if m._meta.app_label in ("labeling", "active_learning")
]


def test_every_model_is_registered() -> None:
    from django.apps import apps

    ours = {m for m in apps.get_models() if m._meta.app_label in ("labeling", "active_learning")}
    assert ours == set(OUR_MODELS)


@pytest.mark.parametrize("model", OUR_MODELS, ids=lambda m: m.__name__)
def test_changelist_search_filter_and_change_page(admin_client, populated, model) -> None:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1

    model_admin = admin.site._registry[model]
    assert model_admin.search_fields, f"{model.__name__} admin has no search"
    assert admin_client.get(url, {"q": "a"}).status_code == 200

    if model_admin.list_filter:
        # Follow the filter's own links: one of its non-"All" choices must select our row.
        cl = response.context["cl"]
        spec = cl.filter_specs[0]
        hits = []
        for choice in list(spec.choices(cl))[1:]:
            filtered = admin_client.get(url + choice["query_string"])
            assert filtered.status_code == 200, choice
            hits.append(filtered.context["cl"].result_count)
        assert max(hits, default=0) >= 1, f"no choice of {spec.title} selects a row"

    obj = model.objects.first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert admin_client.get(change).status_code == 200


def _change_form_data(response) -> dict[str, object]:
    """The POST an admin sends when saving a change page unchanged (form and inlines)."""
    data: dict[str, object] = {}

    def add(form) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None:
                continue
            if isinstance(value, list | tuple):
                data[form.add_prefix(name)] = [str(v) for v in value]
            elif isinstance(value, bool):
                if value:
                    data[form.add_prefix(name)] = "on"
            else:
                data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for form in formset.initial_forms:
            add(form)
    return data


def test_changing_a_projects_embedding_backend_starts_the_embedding_job(admin_client) -> None:
    """The new vectors are made in the background; the project's models keep the old ones."""
    label = LabelClassFactory(name="gambling")
    project = label.project
    url = reverse("admin:labeling_project_change", args=[project.pk])
    data = _change_form_data(admin_client.get(url))
    response = admin_client.post(url, data)  # saved unchanged: no job
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Job.objects.filter(project=project, kind="embed").exists()

    data["embedding_backend"] = "onnx-int8"
    assert admin_client.post(url, data).status_code == 302
    project.refresh_from_db()
    assert project.embedding_backend == "onnx-int8" and project.embedding_model == ""
    [job] = Job.objects.filter(project=project, kind="embed")
    assert job.params["reason"] == (
        "embedding backend changed to MiniLM through ONNX Runtime, int8 (faster, same accuracy)"
    )
