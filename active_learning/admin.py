"""Admin for the pipeline's models: embeddings, model versions, predictions, jobs and leases."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from active_learning import models
from workbench.admin_mixins import HistoryAdmin


@admin.register(models.Embedding)
class EmbeddingAdmin(HistoryAdmin):
    list_display = ("content_hash", "model_name", "dim", "created_at")
    list_filter = ("model_name",)
    search_fields = ("content_hash",)
    exclude = ("vector",)
    show_full_result_count = False


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "project",
        "number",
        "status",
        "estimator",
        "calibration",
        "n_train",
        "n_eval",
        "created_at",
    )
    list_filter = ("status", "project", "estimator")
    search_fields = ("project__name", "decision_reason")
    # Versions change only through training and the promote action (which audits).
    readonly_fields = [f.name for f in models.ModelVersion._meta.fields]
    actions = ("promote",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: models.ModelVersion | None = None
    ) -> bool:
        return False

    @admin.action(description="Make champion (promote, or roll back to this version)")
    def promote(self, request: HttpRequest, queryset: QuerySet[models.ModelVersion]) -> None:
        from active_learning.services.promotion import model_version_promote

        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        try:
            model_version_promote(
                version=version, actor=request.user, reason=f"promoted by hand by {request.user}"
            )
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"v{version.number} is now the champion of {version.project}.")


@admin.register(models.Prediction)
class PredictionAdmin(HistoryAdmin):
    list_display = (
        "case",
        "model_version",
        "predicted_label",
        "confidence",
        "uncertainty",
        "label_issue_score",
    )
    list_filter = ("model_version__project", "model_version")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "model_version", "predicted_label")
    list_select_related = ("case", "model_version__project", "predicted_label")
    show_full_result_count = False


@admin.register(models.LabelIssue)
class LabelIssueAdmin(HistoryAdmin):
    list_display = (
        "case",
        "given_label",
        "suggested_label",
        "score",
        "in_prune_set",
        "detected_at",
    )
    list_filter = ("in_prune_set", "project")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "given_label", "suggested_label", "job")
    list_select_related = ("case", "given_label", "suggested_label")
    show_full_result_count = False
