"""Drop four indexes that others already cover, so that each label writes fewer index entries.

Every label rewrites its case's row (`changed_at`, which the search sorts by, so the update is
never HOT) and its queue item's, and adds an annotation; each index on those tables costs
0.1-0.25 ms of a label's write at 1,000,000 cases (measured on `bench/queue_latency.py`'s
database). These four serve no query another index does not:

- `Case.project`: `case_external_id_unique` (project, external_id) leads with it;
- `Case.content_hash`'s LIKE twin (`..._like`, varchar_pattern_ops; only equality is looked up);
  the plain index stays, renamed `case_content_hash` as a Meta index;
- `QueueItem.assigned_to`: `queueitem_assignee_status` (assigned_to, status) leads with it;
- `Annotation.annotator`: `annotation_by_annotator` (annotator, -created_at) leads with it.

Only the indexes go: the foreign-key constraints stay as they are (AlterField would drop and
re-validate them, a full scan of each table). PostgreSQL drops them CONCURRENTLY, hence not
atomic; IF EXISTS, since the names are Django's generated ones.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = (
    "labeling_case_project_id_78a35bed",
    "labeling_case_content_hash_de7b12f7_like",
    "labeling_queueitem_assigned_to_id_a3baa936",
    "labeling_annotation_annotator_id_27105154",
)
OLD_HASH_INDEX = "labeling_case_content_hash_de7b12f7"
HASH_INDEX = "case_content_hash"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in DROPPED:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        schema_editor.execute(f"ALTER INDEX IF EXISTS {OLD_HASH_INDEX} RENAME TO {HASH_INDEX}")
        return
    for name in (*DROPPED, OLD_HASH_INDEX):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {HASH_INDEX} ON labeling_case (content_hash)"
    )


def backwards(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(f"ALTER INDEX IF EXISTS {HASH_INDEX} RENAME TO {OLD_HASH_INDEX}")
    else:
        schema_editor.execute(f"DROP INDEX IF EXISTS {HASH_INDEX}")
        schema_editor.execute(f"CREATE INDEX {OLD_HASH_INDEX} ON labeling_case (content_hash)")
    columns = {
        "labeling_case_project_id_78a35bed": ("labeling_case", "project_id", ""),
        "labeling_queueitem_assigned_to_id_a3baa936": ("labeling_queueitem", "assigned_to_id", ""),
        "labeling_annotation_annotator_id_27105154": ("labeling_annotation", "annotator_id", ""),
        "labeling_case_content_hash_de7b12f7_like": (
            "labeling_case",
            "content_hash",
            " varchar_pattern_ops",
        ),
    }
    for name, (table, column, opclass) in columns.items():
        if opclass and not postgres:
            continue
        concurrently = "CONCURRENTLY " if postgres else ""
        schema_editor.execute(
            f"CREATE INDEX {concurrently}IF NOT EXISTS {name} ON {table} ({column}{opclass})"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("labeling", "0013_given_label_weight_default_1"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.AlterField(
                    model_name="annotation",
                    name="annotator",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="annotations",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="case",
                    name="content_hash",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="case",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="cases",
                        to="labeling.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="queueitem",
                    name="assigned_to",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="queue_items",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddIndex(
                    model_name="case",
                    index=models.Index(fields=["content_hash"], name=HASH_INDEX),
                ),
            ],
        )
    ]
