"""Admin for every labeling model: searchable, filterable, with related rows inline where useful."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from labeling import models
from labeling.hooks import model_side
from workbench.admin_mixins import HistoryAdmin
from workbench.core.audit import audit_record


class LabelClassInline(admin.TabularInline):
    model = models.LabelClass
    extra = 0
    fields = ("name", "display_name", "tier", "shortcut_key", "order")


class MembershipInline(admin.TabularInline):
    model = models.ProjectMembership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "strategy",
        "overlap",
        "evaluation_fraction",
        "evaluation_overlap",
        "blind_mode",
    )
    list_filter = ("strategy", "blind_mode", "classes_fixed")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("split_seed", "labels_since_training", "created_at", "updated_at")
    inlines = (LabelClassInline, MembershipInline)
    actions = ("retrain_now", "export_csv", "export_parquet")

    def save_model(
        self,
        request: HttpRequest,
        obj: models.Project,
        form: forms.ModelForm[models.Project],
        change: bool,
    ) -> None:
        """Settings changes are audited like every other change."""
        before = None
        if change:
            old = models.Project.objects.get(pk=obj.pk)
            before = {f: getattr(old, f) for f in form.changed_data if hasattr(old, f)}
        super().save_model(request, obj, form, change)
        after = {f: getattr(obj, f) for f in form.changed_data if hasattr(obj, f)}
        action = "project.settings" if change else "project.create"
        audit_record(
            actor=request.user, action=action, obj=obj, project=obj, before=before, after=after
        )
        if change and "embedding_backend" in form.changed_data:
            # The new vectors are made in the background; the models keep the old ones till then.
            model_side().embedding_start(
                project=obj,
                reason=f"embedding backend changed to {obj.get_embedding_backend_display()}",
            )

    @admin.action(description="Retrain now")
    def retrain_now(self, request: HttpRequest, queryset: QuerySet[models.Project]) -> None:
        for project in queryset:
            job = model_side().retrain_start(project=project, reason=f"manual, by {request.user}")
            if job is None:
                self.message_user(
                    request, f"{project}: a retrain is already queued or running.", messages.WARNING
                )
            else:
                self.message_user(request, f"{project}: retrain job #{job.pk} queued.")

    def _export(self, request: HttpRequest, queryset: QuerySet[models.Project], fmt: str) -> None:
        from django.urls import reverse
        from django.utils.html import format_html

        from labeling.services.exports import ExportOptions
        from labeling.services.exports.jobs import case_export_request

        for project in queryset:
            job = case_export_request(
                project=project, fmt=fmt, options=ExportOptions(), actor=request.user
            )
            url = reverse("labeling:case_export_job", args=[project.slug, job.pk])
            self.message_user(
                request,
                format_html('{}: export job <a href="{}">#{}</a> queued.', project, url, job.pk),
            )

    @admin.action(description="Export cases (CSV)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[models.Project]) -> None:
        self._export(request, queryset, "csv")

    @admin.action(description="Export cases (Parquet)")
    def export_parquet(self, request: HttpRequest, queryset: QuerySet[models.Project]) -> None:
        self._export(request, queryset, "parquet")


@admin.register(models.ProjectMembership)
class ProjectMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "role", "created_at")
    list_filter = ("role", "project")
    search_fields = ("user__username", "project__name")
    autocomplete_fields = ("user", "project")


@admin.register(models.LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "project", "tier", "shortcut_key", "order")
    list_filter = ("tier", "project")
    search_fields = ("name", "display_name", "description")


@admin.register(models.Case)
class CaseAdmin(HistoryAdmin):
    list_display = ("external_id", "project", "split", "given_label", "imported_at")
    list_filter = ("split", "project")
    search_fields = ("external_id", "text")
    raw_id_fields = ("given_label",)
    readonly_fields = ("content_hash", "imported_at", "updated_at")
    list_select_related = ("project", "given_label")
    show_full_result_count = False


@admin.register(models.SyntheticTruth)
class SyntheticTruthAdmin(HistoryAdmin):
    list_display = ("case", "true_label", "noise_kind")
    list_filter = ("noise_kind", "true_label__project")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "true_label")
    list_select_related = ("case__project", "true_label")


@admin.register(models.QueueItem)
class QueueItemAdmin(HistoryAdmin):
    list_display = ("id", "case", "slot", "status", "kind", "priority", "assigned_to")
    list_filter = ("status", "kind", "project")
    search_fields = ("case__external_id", "assigned_to__username")
    raw_id_fields = ("case", "suggestion", "assigned_to")
    list_select_related = ("case__project", "assigned_to")
    show_full_result_count = False


@admin.register(models.Annotation)
class AnnotationAdmin(HistoryAdmin):
    list_display = (
        "id",
        "case",
        "annotator",
        "label",
        "noise_flag",
        "ambiguous",
        "skipped",
        "source",
        "created_at",
    )
    list_filter = ("source", "noise_flag", "ambiguous", "skipped", "case__project")
    search_fields = ("case__external_id", "annotator__username", "comment")
    raw_id_fields = ("case", "queue_item", "label", "superseded_by")
    list_select_related = ("case__project", "annotator", "label")
    readonly_fields = ("submission_id", "content_hash", "created_at")


@admin.register(models.ResolvedLabel)
class ResolvedLabelAdmin(HistoryAdmin):
    list_display = ("case", "label", "source", "confidence", "doubtful", "excluded")
    list_filter = ("source", "doubtful", "excluded", "case__project")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "label")
    list_select_related = ("case__project", "label")


@admin.register(models.QueueCursor)
class QueueCursorAdmin(HistoryAdmin):
    list_display = ("analyst", "project", "claims")
    list_filter = ("project",)
    search_fields = ("analyst__username",)
    raw_id_fields = ("analyst",)
    list_select_related = ("analyst", "project")


@admin.register(models.QueueAction)
class QueueActionAdmin(HistoryAdmin):
    list_display = ("id", "analyst", "project", "kind", "annotation", "created_at", "undone_at")
    list_filter = ("kind", "project")
    search_fields = ("analyst__username",)
    raw_id_fields = ("analyst", "annotation", "previous")
    list_select_related = ("analyst", "project", "annotation")
    readonly_fields = ("created_at",)


@admin.register(models.CaseConsensus)
class CaseConsensusAdmin(HistoryAdmin):
    """Written by the consensus step of every retrain; read-only."""

    list_display = ("case", "label", "posterior", "given_disagrees", "analyst_labels", "job")
    list_filter = ("given_disagrees", "project")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "label", "job")
    list_select_related = ("case__project", "label", "job")
    show_full_result_count = False


@admin.register(models.AnnotatorReliability)
class AnnotatorReliabilityAdmin(HistoryAdmin):
    """Written by the consensus step of every retrain; read-only."""

    list_display = (
        "measured_at",
        "project",
        "annotator",
        "label_source",
        "accuracy",
        "labels",
        "gold_labels",
        "gold_correct",
    )
    list_filter = ("project", "label_source")
    search_fields = ("annotator__username", "label_source", "project__name")
    raw_id_fields = ("annotator", "job")
    list_select_related = ("project", "annotator")


@admin.register(models.AgreementReport)
class AgreementReportAdmin(HistoryAdmin):
    """Written by the consensus step of every retrain; read-only."""

    list_display = ("measured_at", "project", "alpha", "alpha_low", "alpha_high", "cases")
    list_filter = ("project",)
    search_fields = ("project__name",)
    raw_id_fields = ("job",)
    list_select_related = ("project",)
