"""Open queue items made before items carried their model facts get them from the predictions
the card used to read (their own model version's, else the champion's)."""

from django.db import migrations

ALTERNATIVES = 2


def facts_from_predictions(apps, schema_editor):
    QueueItem = apps.get_model("labeling", "QueueItem")
    Prediction = apps.get_model("active_learning", "Prediction")
    ModelVersion = apps.get_model("active_learning", "ModelVersion")
    champions = dict(
        ModelVersion.objects.filter(status="champion").values_list("project_id", "pk")
    )
    items = QueueItem.objects.filter(status__in=["open", "claimed"], suggestion__isnull=True)
    for item in items.iterator(chunk_size=2000):
        version_id = item.model_version_id or champions.get(item.project_id)
        if version_id is None:
            continue
        prediction = Prediction.objects.filter(
            case_id=item.case_id, model_version_id=version_id
        ).first()
        if prediction is None:
            continue
        top = [r for r in (prediction.top_k or []) if isinstance(r, list | tuple) and len(r) == 2]
        item.model_version_id = version_id
        item.suggestion_id = prediction.predicted_label_id
        item.suggestion_p = round(float(prediction.confidence), 4)
        item.alternatives = [
            [int(c), round(float(p), 4)] for c, p in top if int(c) != prediction.predicted_label_id
        ][:ALTERNATIVES]
        item.save(update_fields=["model_version_id", "suggestion", "suggestion_p", "alternatives"])


class Migration(migrations.Migration):
    dependencies = [
        ("active_learning", "0004_job_lease_to_core"),
        ("labeling", "0007_queue_kinds_and_facts"),
    ]

    operations = [migrations.RunPython(facts_from_predictions, migrations.RunPython.noop)]
