"""`manage.py import_cases <project> <file>`: import a CSV, JSONL or Parquet file, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.models import Project
from labeling.services.imports import Columns, case_import

ERR_NO_PROJECT = "No project with slug '{slug}'."
PHASES = {"validate": "Validating", "write": "Writing", "update": "Updating"}


class _Bar:
    """One tqdm bar per phase, in percent; silent when the command is run with -v 0."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.phase = ""

    def __call__(self, phase: str, fraction: float) -> None:
        if not self.enabled:
            return
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=100, desc=PHASES.get(phase, phase), unit="%", leave=True)
        if self.bar is not None:
            self.bar.update(max(0, round(fraction * 100) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(100 - self.bar.n)
            self.bar.close()
            self.bar = None


class Command(BaseCommand):
    help = "Import cases from a CSV, JSONL or Parquet file: every row or none."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("file", type=Path)
        parser.add_argument("--id-column", default="id")
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--label-column", default="label")
        parser.add_argument(
            "--label-source-column",
            default="label_source",
            help="who gave the label: a legacy rule, team or vendor (optional; `import` when absent)",
        )
        parser.add_argument(
            "--update", action="store_true", help="replace cases whose id already exists"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["project"]
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(ERR_NO_PROJECT.format(slug=slug))
        bar = _Bar(enabled=options["verbosity"] > 0)
        try:
            report = case_import(
                project=project,
                path=options["file"],
                columns=Columns(
                    id=options["id_column"],
                    text=options["text_column"],
                    label=options["label_column"],
                    label_source=options["label_source_column"],
                ),
                update=options["update"],
                progress=bar,
            )
        finally:
            bar.close()
        if not report.ok:
            for problem in report.errors:
                self.stderr.write(str(problem))
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(f"{report.summary()} ({report.seconds:.1f} s)"))
        if report.changed_case_ids:
            n = len(report.changed_case_ids)
            self.stdout.write(f"{n:,} cases have a new text: their annotations are now stale.")
