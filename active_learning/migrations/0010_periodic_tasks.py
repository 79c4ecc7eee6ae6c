"""The minute tick and the nightly retrain (RETRAIN_CRON) in every deployment: `migrate` alone
installs them, not only `manage.py demo`. Beat ensures them again at each start."""

from django.db import migrations


def ensure(apps, schema_editor):
    from active_learning.services.schedules import schedules_ensure

    schedules_ensure(
        models=(
            apps.get_model("django_celery_beat", "PeriodicTask"),
            apps.get_model("django_celery_beat", "IntervalSchedule"),
            apps.get_model("django_celery_beat", "CrontabSchedule"),
        )
    )


class Migration(migrations.Migration):

    dependencies = [
        ("active_learning", "0009_prediction_score_indexes"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    # Reversing leaves the rows: admins may have edited them, and they are harmless.
    operations = [migrations.RunPython(ensure, migrations.RunPython.noop)]
