"""`manage.py retrain <slug> [--wait]`: ask for a retrain as "Retrain now" does, and follow it.

With --wait it shows the job's progress until it ends: exit 0 when it succeeded, 1 when it
failed or was cancelled, 2 when no worker took it within --start-timeout seconds (it stays
queued). A retrain lost to a dead worker is followed into the retry the minute tick makes.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from active_learning.services.retrain_requests import (
    retrain_pending,
    retrain_retry_of,
    retrain_start,
)
from labeling.models import Project
from workbench.core.jobs import JobNotStarted, job_wait
from workbench.core.models import Job, JobStatus

REASON = "manual, from the command line"
BAR_WIDTH = 30
HANDOVER_SECONDS = 90.0  # a reaped job's retry comes from the next minute tick
ERR_NO_PROJECT = "No project with slug '{slug}'. Known: {known}."
ERR_NO_WORKER = (
    "No worker took retrain job #{job} within {seconds:.0f} s. Start one on the same broker and "
    "database (`celery -A workbench worker`; broker: {transport}); the job stays queued and "
    "runs when a worker takes it."
)


class Command(BaseCommand):
    help = "Request a retrain of a project (as the 'Retrain now' button does); --wait follows it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the project's slug")
        parser.add_argument(
            "--wait", action="store_true", help="show progress until the retrain ends"
        )
        parser.add_argument(
            "--start-timeout",
            type=float,
            default=120.0,
            help="with --wait: give up (exit 2) when no worker starts the job within this "
            "many seconds (default 120)",
        )

    def handle(self, *args: Any, slug: str, wait: bool, start_timeout: float, **_: Any) -> None:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            known = ", ".join(Project.objects.order_by("slug").values_list("slug", flat=True))
            raise CommandError(ERR_NO_PROJECT.format(slug=slug, known=known or "none"))
        job = retrain_start(project=project, reason=REASON)
        if job is None:
            job = retrain_pending(project=project)
            if job is None:  # finished between the two reads
                raise CommandError(f"A retrain of {project.name} just ended; run this again.")
            self.stdout.write(
                f"A retrain of {project.name} is already {job.status}: job #{job.pk}."
            )
        else:
            self.stdout.write(f"Retrain of {project.name} queued: job #{job.pk}.")
        if wait:
            self._follow(job, start_timeout=start_timeout)

    def _follow(self, job: Job, *, start_timeout: float) -> None:
        while True:
            try:
                job = job_wait(job_id=job.pk, on_update=self._show, start_timeout=start_timeout)
            except JobNotStarted as exc:
                self.stdout.write("")
                raise CommandError(
                    ERR_NO_WORKER.format(job=job.pk, seconds=start_timeout, transport=_transport()),
                    returncode=2,
                ) from exc
            self.stdout.write("")
            if job.status == JobStatus.SUCCEEDED:
                self.stdout.write(self.style.SUCCESS(f"Job #{job.pk} succeeded: {job.message}"))
                return
            retry = self._retry(job) if job.reaped_at is not None else None
            if retry is None:
                problem = (job.error or job.message or job.status).strip().splitlines()[0]
                raise CommandError(f"Retrain job #{job.pk} {job.status}: {problem}")
            self.stdout.write(f"Job #{job.pk} was lost (no heartbeat); following job #{retry.pk}.")
            job = retry

    def _retry(self, job: Job) -> Job | None:
        deadline = time.monotonic() + HANDOVER_SECONDS
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if "handled" in job.params:
                return retrain_retry_of(job=job)
            time.sleep(1.0)
        return None

    def _show(self, job: Job) -> None:
        done = round(job.progress * BAR_WIDTH)
        bar = f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {job.progress:4.0%} {job.status}"
        line = f"{bar}: {job.message}" if job.message else bar
        if self.stdout.isatty():
            self.stdout.write(f"\r{line[:120]:<120}", ending="")
            self.stdout.flush()
        else:
            self.stdout.write(line)


def _transport() -> str:
    from django.conf import settings

    return str(settings.CELERY_BROKER_URL).split("://", 1)[0] + "://"
