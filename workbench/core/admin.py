"""Admin for jobs, leases and the audit log (history: read-only)."""

from __future__ import annotations

from django.contrib import admin

from workbench.admin_mixins import HistoryAdmin
from workbench.core import models


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "project",
        "status",
        "progress",
        "message",
        "heartbeat_at",
        "created_at",
    )
    list_filter = ("status", "kind", "project")
    search_fields = ("kind", "message", "error", "celery_task_id")


@admin.register(models.Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ("name", "holder", "job", "expires_at", "acquired_at")
    search_fields = ("name", "holder")
    raw_id_fields = ("job",)


@admin.register(models.AuditEvent)
class AuditEventAdmin(HistoryAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id", "project")
    list_filter = ("action", "object_type", "project")
    search_fields = ("object_id", "action", "actor__username")
    readonly_fields = [f.name for f in models.AuditEvent._meta.fields]
