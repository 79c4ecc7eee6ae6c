"""Jobs, leases and audit events: the durable state both apps write.

The tables keep the names they had when these models lived in `active_learning` and `labeling`
(`db_table`), so an existing database moves over without copying a row. The project is named by
its label (`labeling.Project`), never imported.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from workbench.db import choices_check

PROJECT_MODEL = "labeling.Project"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JobKind(models.TextChoices):
    """What a job does; a new long step adds a kind here."""

    RETRAIN = "retrain", "Retrain"
    CASE_IMPORT = "case_import", "Case import"
    CASE_EXPORT = "case_export", "Case export"
    EMBED = "embed", "Embedding"


class Job(models.Model):
    """A long step the UI can follow: progress 0..1, a message, and a heartbeat."""

    kind = models.CharField(max_length=64)
    project = models.ForeignKey(
        PROJECT_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Set by the reaper when the heartbeat stopped (a killed or hung worker): such a job is
    # requested again by its kind's owner (the retrain's due-check), not by the reaper.
    reaped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "active_learning_job"
        ordering = ["-created_at"]
        constraints = [
            choices_check("status", JobStatus, "job_status_valid"),
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=1), name="job_progress_unit"
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "heartbeat_at"],
                condition=Q(status="running"),
                name="job_running_heartbeat",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class Lease(models.Model):
    """A named database lock with an expiry, e.g. `retrain:<project id>`; a dead holder's runs out."""

    name = models.CharField(max_length=200, unique=True)
    holder = models.CharField(max_length=200)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "active_learning_lease"

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder}"


class Heartbeat(models.Model):
    """The last time a long-lived process proved it runs (`beat`: the scheduler loop; `tick`:
    the minute tick that beat sends), read by the status page."""

    name = models.CharField(max_length=64, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class AuditEvent(models.Model):
    """Who did what to which object, with the before and after state."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    project = models.ForeignKey(
        PROJECT_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "labeling_auditevent"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"
