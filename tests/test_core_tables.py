"""Jobs, leases and audit events moved to `workbench.core` keep their tables and rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# Core's later migrations (0002: heartbeats, reaped_at) go back too, so that AFTER is forwards only.
BEFORE = [
    ("active_learning", "0003_label_issue"),
    ("labeling", "0005_density_strategy"),
    ("core", "0001_initial"),
]
AFTER = [
    ("core", "0001_initial"),
    ("active_learning", "0004_job_lease_to_core"),
    ("labeling", "0006_auditevent_to_core"),
]


@pytest.mark.django_db(transaction=True)
def test_an_existing_database_migrates_forward_with_its_rows():
    """Rows written by the old apps' models are read by core's after the migration."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Project = old.get_model("labeling", "Project")
    project = Project.objects.create(name="P", slug="p", split_seed=1)
    job = old.get_model("active_learning", "Job").objects.create(
        kind="retrain", project_id=project.pk, message="kept"
    )
    old.get_model("active_learning", "Lease").objects.create(
        name="retrain:1", holder="h", job_id=job.pk, expires_at="2030-01-01T00:00:00Z"
    )
    old.get_model("labeling", "AuditEvent").objects.create(
        action="x.y", object_type="labeling.case", object_id="1", project_id=project.pk
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    assert new.get_model("core", "Job").objects.get(pk=job.pk).message == "kept"
    assert new.get_model("core", "Lease").objects.get(name="retrain:1").job_id == job.pk
    assert new.get_model("core", "AuditEvent").objects.filter(project_id=project.pk).count() == 1
    issue_job = new.get_model("active_learning", "LabelIssue")._meta.get_field("job")
    assert issue_job.related_model._meta.label == "core.Job"

    # Leave the database as the other tests expect it: fully migrated, without these rows.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    Project.objects.filter(pk=project.pk).delete()
