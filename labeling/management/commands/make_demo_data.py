"""`manage.py make_demo_data <project> --cases N --noise 0.2 --seed S`: synthetic merchants."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.management.commands.import_cases import ERR_NO_PROJECT, _Bar
from labeling.models import Project
from labeling.services.demo_data import DEMO_NOISE, DEMO_SEED, demo_data_generate
from workbench.errors import ApplicationError


class Command(BaseCommand):
    help = "Generate merchant cases with known label noise (true labels kept as SyntheticTruth)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("--cases", type=int, default=1000)
        parser.add_argument("--noise", type=float, default=DEMO_NOISE, help="share of wrong labels")
        parser.add_argument("--seed", type=int, default=DEMO_SEED)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(ERR_NO_PROJECT.format(slug=options["project"]))
        bar = _Bar(enabled=options["verbosity"] > 0)
        try:
            report = demo_data_generate(
                project=project,
                cases=options["cases"],
                noise=options["noise"],
                seed=options["seed"],
                progress=bar,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        if not report.ok:
            for problem in report.errors:
                self.stderr.write(str(problem))
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(f"{report.summary()} ({report.seconds:.1f} s)"))
