# Roles as groups with permissions: analyst < reviewer < admin.

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "analyst": ["label_cases"],
    "reviewer": ["label_cases", "review_cases"],
    "admin": ["label_cases", "review_cases", "administer_project"],
}


def create_role_groups(apps, schema_editor):
    # Permissions are normally created after all migrations: make ours exist now.
    app_config = apps.get_app_config("labeling")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="labeling", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0003_case_text_search"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="project",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("label_cases", "Can label cases in the queue of projects they are a member of"),
                    ("review_cases", "Can search cases and label them outside queue order"),
                    ("administer_project", "Can import, retrain, promote and change project settings"),
                ],
            },
        ),
        migrations.RunPython(create_role_groups, migrations.RunPython.noop),
    ]
