"""A project's embedding backend: a change re-embeds in the background while the champion keeps
serving; vectors of two backends never meet in one matrix; each model version scores with the
vectors it was trained on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from active_learning.ml.embeddings import static_distill
from active_learning.models import Embedding, ModelStatus, ModelVersion, Prediction
from active_learning.selectors import champion_of
from active_learning.services import embeddings
from active_learning.services.embedding_jobs import embedding_run, embedding_start
from active_learning.services.retrain import retrain_project, retrain_request
from labeling.models import Case, Project
from tests.pipeline import generated_project
from workbench.core.models import Job, JobKind, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)

# Token ids below ~2,000 are BERT's unused and special tokens: 10,000 covers the common words.
VOCABULARY = 10_000


@pytest.fixture(scope="session")
def static_artifact(tmp_path_factory):
    """A static encoder distilled once per session (a reduced vocabulary, for time)."""
    return static_distill(None, tmp_path_factory.mktemp("static") / "a", vocabulary_size=VOCABULARY)


@pytest.fixture
def data_dir(settings, tmp_path, static_artifact):
    settings.WORKBENCH_DATA_DIR = tmp_path
    settings.PIPELINE_FANOUT = False
    name = embeddings.backend_model_name(settings.EMBEDDING_MODEL, "static")
    shutil.copytree(static_artifact, embeddings.encoder_dir(name))  # as if prepared earlier
    return tmp_path


def _stored(model_name: str, digest: str) -> np.ndarray:
    row = Embedding.objects.get(model_name=model_name, content_hash=digest)
    return np.frombuffer(bytes(row.vector), dtype="<f4")


def test_a_backend_change_moves_the_models_to_vectors_that_never_meet_the_old(
    data_dir, settings
) -> None:
    project = generated_project(n=160, given_label_weight=1.0, batch_size=10)
    first = retrain_project(job=retrain_request(project=project, reason="test"))
    v1 = ModelVersion.objects.get(project=project, number=first["trained"])
    torch_name = settings.EMBEDDING_MODEL
    assert v1.status == ModelStatus.CHAMPION and v1.embedding_model == torch_name

    Project.objects.filter(pk=project.pk).update(embedding_backend="static")
    project.refresh_from_db()
    static_name = embeddings.model_name_selected(project)
    assert static_name == f"{torch_name}@static"
    job = embedding_start(project=project, reason="embedding backend changed")
    result = embedding_run(job_id=job.pk)
    assert result is not None and result["switched_to"] == static_name
    project.refresh_from_db()
    assert project.embedding_model == static_name

    hashes = set(Case.objects.filter(project=project).values_list("content_hash", flat=True))
    old = embeddings.matrix_load(model_name=torch_name)
    new = embeddings.matrix_load(model_name=static_name)
    assert set(old.index) == set(new.index) == hashes
    assert old.vectors.shape[1] == 384 and new.vectors.shape[1] == 256
    for name, matrix in ((torch_name, old), (static_name, new)):
        for digest in sorted(hashes)[:25]:
            np.testing.assert_array_equal(
                matrix.vectors[matrix.index[digest]], _stored(name, digest)
            )

    # The job asked for the retrain; it trains on the new vectors, and whichever version wins,
    # the champion scores every case with the vectors it was trained on.
    retrain = Job.objects.get(project=project, kind=JobKind.RETRAIN, status=JobStatus.QUEUED)
    assert retrain.params["reason"].startswith("vectors of the new embedding backend are ready")
    second = retrain_project(job=retrain)
    retrain.refresh_from_db()
    assert retrain.status == JobStatus.SUCCEEDED, retrain.error
    v2 = ModelVersion.objects.get(project=project, number=second["trained"])
    assert v2.embedding_model == static_name
    assert "cannot be scored" not in v2.decision_reason  # v1 was re-scored on its own vectors
    champion = champion_of(project=project)
    assert champion is not None
    assert Prediction.objects.filter(model_version=champion).count() == len(hashes) == 160


def test_a_retrain_starts_the_lost_embedding_job_of_a_backend_change(data_dir) -> None:
    """The admin's change queued the job, but it was lost: the next retrain queues it again
    and meanwhile trains on the vectors in use."""
    project = generated_project(n=40, given_label_weight=1.0, batch_size=10)
    Project.objects.filter(pk=project.pk).update(embedding_backend="static")
    retrain_project(job=retrain_request(project=project, reason="test"))
    version = ModelVersion.objects.get(project=project)
    assert version.embedding_model == embeddings.model_name_for(project)  # still torch
    [job] = Job.objects.filter(project=project, kind=JobKind.EMBED)
    assert job.status == JobStatus.QUEUED
    assert job.params["reason"] == "the project's embedding backend changed"
