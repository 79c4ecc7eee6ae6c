"""A full-text GIN index over Case.text (English), on PostgreSQL only; SQLite search uses LIKE.

The index is built by the schema editor from `GinIndex(SearchVector("text", config="english"))`,
so its expression is exactly the one `labeling.selectors_search` filters on.
"""

from django.db import migrations

INDEX_NAME = "case_text_search"


def _index():
    from django.contrib.postgres.indexes import GinIndex
    from django.contrib.postgres.search import SearchVector

    return GinIndex(SearchVector("text", config="english"), name=INDEX_NAME)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.add_index(apps.get_model("labeling", "Case"), _index())


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("labeling", "Case"), _index())


class Migration(migrations.Migration):
    dependencies = [("labeling", "0002_queue_claims_undo")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
