"""Labeling keeps working while the broker is down; the due retrain is sent once it is back.

Runs in subprocesses on the embedded default (SQLite): first with CELERY_BROKER_URL pointing at
a closed port, then with the filesystem broker, whose queue folder shows the resent message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.worker import manage, service_env

LABEL_WITH_BROKER_DOWN = """
import json, uuid
from labeling.models import Project
from labeling.services.annotations import annotation_submit
from workbench.core.models import Job
from tests.factories import CaseFactory, LabelClassFactory, ProjectFactory, UserFactory
project = ProjectFactory(slug="p", retrain_after_n=2)
label = LabelClassFactory(project=project)
analyst = UserFactory()
for _ in range(3):
    annotation_submit(item_or_case=CaseFactory(project=project), analyst=analyst,
                      submission_id=uuid.uuid4(), label=label)
print("RESULT", json.dumps({
    "annotations": analyst.annotations.count(),
    "jobs": list(Job.objects.values_list("status", flat=True)),
}))
"""

BROKER_BACK = """
import json
from datetime import timedelta
from django.utils import timezone
from workbench.core.models import Job
from active_learning.services.retrain import retrain_due_check
Job.objects.update(created_at=timezone.now() - timedelta(minutes=5))
print("RESULT", json.dumps(retrain_due_check()))
"""


def _run(code: str, env: dict[str, str]) -> dict:
    out = manage("shell", "-c", code, env=env, timeout=180).stdout
    return json.loads(out.split("RESULT", 1)[1])


@pytest.mark.worker
def test_labels_are_kept_with_the_broker_down_and_the_retrain_is_resent(tmp_path: Path) -> None:
    var = tmp_path / "var"
    base = {"DATABASE_URL": None, "WORKBENCH_VAR_DIR": str(var)}
    down = service_env(**base, CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    manage("migrate", "--no-input", env=down)
    labelled = _run(LABEL_WITH_BROKER_DOWN, down)
    assert labelled == {"annotations": 3, "jobs": ["queued"]}

    back = service_env(**base, CELERY_BROKER_URL=None)
    result = _run(BROKER_BACK, back)
    assert len(result["resent"]) == 1 and result["started"] == []
    messages = list((var / "broker" / "queue").iterdir())
    assert len(messages) == 1
    assert "active_learning.retrain_project" in messages[0].read_text()
