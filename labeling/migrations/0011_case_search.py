"""The case search: a last-change time per case, and the indexes its first page needs.

- `Case.changed_at` (the search's default order): added with a database default, which
  PostgreSQL 11+ stores once in the catalogue instead of rewriting the table; then backfilled
  from the case's own `updated_at` and its resolution's (people's and consensus changes only) in
  batches of BACKFILL_BATCH ids, each committed alone, so no lock is held for long.
- On PostgreSQL every index is built with CREATE INDEX CONCURRENTLY (reads and writes go on;
  the build takes longer), which is why this migration is not atomic: (project, changed_at, id);
  the full-text GIN index now over the business name and the description together
  (`labeling.selectors_search.search_vector`), replacing 0003's over the description alone,
  which is dropped concurrently once the new one exists; and upper(external_id) with
  text_pattern_ops for the case-insensitive id prefix (LIKE 'ABC%' can use a btree only with
  the pattern operators unless the database's collation is C), with the id included for
  index-only reads. SQLite gets the plain btree.
"""

from django.db import migrations, models
from django.db.models.functions import Now
from django.utils import timezone

BACKFILL_BATCH = 20_000
OLD_TEXT_INDEX = "case_text_search"
TEXT_INDEX = "case_name_text_search"
ID_PREFIX_INDEX = "case_external_id_upper"


def _text_index():
    from django.contrib.postgres.indexes import GinIndex
    from django.contrib.postgres.search import SearchVector
    from django.db.models.fields.json import KeyTextTransform

    # Exactly `labeling.selectors_search.search_vector()` (a test checks the plan uses it),
    # written out so that later changes of the selector cannot rewrite this history.
    name = KeyTextTransform("business_name", "metadata")
    return GinIndex(SearchVector(name, "text", config="english"), name=TEXT_INDEX)


# `external_id__istartswith` is UPPER(external_id::text) LIKE UPPER('abc%'); the search reads
# the matching ids, so they are in the index too (an index-only scan: a prefix of 8,000 ids
# read through the table took ~90 ms at 1M cases). Plain SQL: an operator class in a Django
# index needs django.contrib.postgres installed.
ID_PREFIX_CREATE = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {ID_PREFIX_INDEX} ON {{table}}"
    " (project_id, (UPPER(external_id::text)) text_pattern_ops) INCLUDE (id)"
)
ID_PREFIX_DROP = f"DROP INDEX CONCURRENTLY IF EXISTS {ID_PREFIX_INDEX}"


def _old_text_index():
    from django.contrib.postgres.indexes import GinIndex
    from django.contrib.postgres.search import SearchVector

    return GinIndex(SearchVector("text", config="english"), name=OLD_TEXT_INDEX)


def backfill(apps, schema_editor):
    """changed_at = the latest of the case's update and its resolution's by people (not the
    detector's doubtful marks on given labels), one id range per statement."""
    Case = apps.get_model("labeling", "Case")
    Resolved = apps.get_model("labeling", "ResolvedLabel")
    case, resolved = Case._meta.db_table, Resolved._meta.db_table
    connection = schema_editor.connection
    resolution = (
        f"(SELECT r.updated_at FROM {resolved} r WHERE r.case_id = {case}.id"
        " AND r.source <> 'given')"
    )
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(
                f"UPDATE {case} SET changed_at = "
                f"MAX(updated_at, COALESCE({resolution}, updated_at))"
            )
            return
        cursor.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {case}")
        low, high = cursor.fetchone()
        for start in range(low, high + 1, BACKFILL_BATCH):
            # Autocommit (the migration is not atomic): each batch commits and unlocks.
            cursor.execute(
                f"UPDATE {case} SET changed_at = GREATEST(updated_at, {resolution})"
                " WHERE id >= %s AND id < %s",
                [start, start + BACKFILL_BATCH],
            )


class AddIndexConcurrently(migrations.AddIndex):
    """AddIndex, built CONCURRENTLY on PostgreSQL (plainly elsewhere)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            concurrently = schema_editor.connection.vendor == "postgresql"
            extra = {"concurrently": True} if concurrently else {}
            schema_editor.add_index(model, self.index, **extra)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            concurrently = schema_editor.connection.vendor == "postgresql"
            schema_editor.remove_index(
                model, self.index, **({"concurrently": True} if concurrently else {})
            )


def postgres_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    case = apps.get_model("labeling", "Case")
    schema_editor.add_index(case, _text_index(), concurrently=True)
    schema_editor.execute(ID_PREFIX_CREATE.format(table=case._meta.db_table))
    schema_editor.remove_index(case, _old_text_index(), concurrently=True)


def postgres_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    case = apps.get_model("labeling", "Case")
    schema_editor.add_index(case, _old_text_index(), concurrently=True)
    schema_editor.execute(ID_PREFIX_DROP)
    schema_editor.remove_index(case, _text_index(), concurrently=True)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("labeling", "0010_evaluation_warmup")]

    operations = [
        migrations.AddField(
            model_name="case",
            name="changed_at",
            field=models.DateTimeField(
                db_default=Now(),
                default=timezone.now,
                help_text="When the case, its given label or its resolved label last changed.",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(fields=["project", "changed_at", "id"], name="case_project_changed"),
        ),
        migrations.RunPython(postgres_indexes_create, postgres_indexes_drop, elidable=False),
    ]
