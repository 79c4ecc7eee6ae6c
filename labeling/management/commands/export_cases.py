"""`manage.py export_cases <project> --format csv|jsonl|parquet`: the cleaned dataset, with a
manifest beside it; `--include provenance` adds every annotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from labeling.models import Project
from labeling.services.exports import (
    CASE_CHOICES,
    FORMATS,
    SPLIT_CHOICES,
    ExportOptions,
    case_export,
)

ERR_NO_PROJECT = "No project with slug '{slug}'."
INCLUDES = ("provenance",)


class Command(BaseCommand):
    help = "Export a project's cases with final labels (and provenance) to CSV, JSONL or Parquet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("--format", choices=FORMATS, default="csv", dest="fmt")
        parser.add_argument(
            "--out", type=Path, help="file to write (default: <slug>-<time>.<format> here)"
        )
        parser.add_argument(
            "--include",
            action="append",
            choices=INCLUDES,
            default=[],
            help="provenance: every annotation (a list column; a second CSV file in CSV mode)",
        )
        parser.add_argument(
            "--cases",
            choices=CASE_CHOICES,
            default="all",
            help="all; labelled (final label from people); changed (final differs from "
            "given); excluded (only the excluded)",
        )
        parser.add_argument("--split", choices=SPLIT_CHOICES, default="all")
        parser.add_argument(
            "--include-excluded",
            action="store_true",
            help="keep cases a reviewer excluded (left out by default)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["project"]
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(ERR_NO_PROJECT.format(slug=slug))
        fmt = options["fmt"]
        out = options["out"] or Path(f"{slug}-{timezone.now():%Y%m%dT%H%M%S}.{fmt}")
        export_options = ExportOptions(
            cases=options["cases"],
            split=options["split"],
            include_excluded=options["include_excluded"],
            provenance="provenance" in options["include"],
        )
        bar = tqdm(total=100, desc="Exporting", unit="%", disable=options["verbosity"] == 0)

        def progress(fraction: float, message: str) -> None:
            bar.update(max(0, round(fraction * 100) - bar.n))

        try:
            result = case_export(
                project=project, fmt=fmt, path=out, options=export_options, progress=progress
            )
        finally:
            bar.update(100 - bar.n)
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {result.rows:,} cases to {result.path} ({result.seconds:.1f} s); "
                f"manifest {result.manifest_path}"
            )
        )
        for extra in result.files[1:]:
            self.stdout.write(f"Annotations: {extra}")
