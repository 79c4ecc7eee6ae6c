"""`manage.py create_project <slug> --classes classes.yaml`: a project, its classes and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.services.projects import project_create_from_yaml
from workbench.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a project from a YAML file of label classes and project settings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--classes",
            required=True,
            type=Path,
            help="YAML file of classes and settings: see docs/classes.md and docs/classes.example.yaml",
        )

    def handle(self, *args: Any, slug: str, classes: Path, **options: Any) -> None:
        try:
            project = project_create_from_yaml(slug=slug, path=classes)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        n = project.label_classes.count()
        self.stdout.write(self.style.SUCCESS(f"Created project '{project.slug}' with {n} classes."))
