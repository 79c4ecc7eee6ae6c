"""Admin for the pipeline's models: embeddings, model versions, predictions, label issues (open
ones by default) and the measured noise of the given labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from active_learning import models, presentation
from labeling.models import LabelClass, ResolvedLabel
from labeling.services.resolution import AUTHORITATIVE_SOURCES
from workbench.admin_mixins import HistoryAdmin

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices


@admin.register(models.Embedding)
class EmbeddingAdmin(HistoryAdmin):
    list_display = ("content_hash", "model_name", "dim", "created_at")
    list_filter = ("model_name",)
    search_fields = ("content_hash",)
    exclude = ("vector",)
    show_full_result_count = False


RAW_JSON_FIELDS = ("metrics", "decision", "params", "snapshot_case_ids")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _with_ci(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ({ci[0]:.3f} to {ci[1]:.3f})" if ci else "")


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    if not rows:
        return "none stored"
    header = format_html_join("", '<th scope="col">{}</th>', ((h,) for h in head))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, body)


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
    # Versions change only through training and the promote action (which audits). The JSON
    # fields are shown as tables (class names, not ids) and the case-id list collapsed.
    readonly_fields = (
        *(f.name for f in models.ModelVersion._meta.fields if f.name not in RAW_JSON_FIELDS),
        "decision_in_words",
        "headline_table",
        "per_class_table",
        "per_tier_table",
        "operating_points_table",
        "params_table",
        "training_case_ids",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "project", "number", "status", "decision_in_words", "embedding_model",
                    "estimator", "calibration", "n_train", "n_eval", "created_at", "trained_at",
                    "promoted_at", "artifact_path", "error",
                )
            },
        ),
        (
            "Evaluation (on the evaluation labels when trained or last re-measured)",
            {
                "fields": (
                    "headline_table", "per_class_table", "per_tier_table",
                    "operating_points_table",
                )
            },
        ),
        ("Training", {"fields": ("params_table", "snapshot_hash", "training_case_ids", "timings")}),
    )  # fmt: skip
    actions = ("promote",)

    def _classes(self, obj: models.ModelVersion) -> dict[int, tuple[str, str]]:
        cached = getattr(obj, "_class_names", None)
        if cached is None:
            cached = {
                pk: (name, str(tier))
                for pk, name, tier in LabelClass.objects.filter(
                    project_id=obj.project_id
                ).values_list("pk", "name", "tier")
            }
            obj._class_names = cached  # type: ignore[attr-defined]
        return cached

    @admin.display(description="decision")
    def decision_in_words(self, obj: models.ModelVersion) -> str:
        return (
            presentation.decision_sentence(obj.number, obj.decision, obj.decision_reason)
            or "no promotion decision recorded"
        )

    @admin.display(description="headline figures")
    def headline_table(self, obj: models.ModelVersion) -> str:
        h = presentation.headline(obj.metrics)
        if h.n_eval == 0:
            return "Not measured: there were no evaluation labels."
        rows = [
            ("evaluation labels", f"{h.n_eval}" + (f" (effective {h.n_effective:.0f}, weighted)" if h.weighted and h.n_effective else "")),
            ("macro-F1", _with_ci(h.macro_f1, h.macro_f1_ci)),
            ("accuracy", _fmt(h.accuracy)),
            ("ECE (top-label, 15 bins)", _fmt(h.ece)),
            ("Brier score", _fmt(h.brier)),
            (
                f"prohibited-tier recall at precision {_fmt(h.target)}",
                _with_ci(h.prohibited_recall, h.prohibited_recall_ci)
                + ("" if h.prohibited_proven else f" (not enough evidence: {h.prohibited_reason})"),
            ),
        ]  # fmt: skip
        return _table(("figure", "value"), rows)

    @admin.display(description="per class (argmax decision)")
    def per_class_table(self, obj: models.ModelVersion) -> str:
        rows = [
            (r.name, r.tier, _fmt(r.precision), _fmt(r.recall), _fmt(r.f1), str(r.support))
            for r in presentation.class_rows(obj.metrics or {}, self._classes(obj))
        ]
        return _table(("class", "tier", "precision", "recall", "F1", "evaluation labels"), rows)

    @admin.display(description="per tier")
    def per_tier_table(self, obj: models.ModelVersion) -> str:
        rows = [
            (r.name, _fmt(r.precision), _fmt(r.recall), _fmt(r.f1), str(r.support))
            for r in presentation.tier_rows(obj.metrics or {})
        ]
        return _table(("tier", "precision", "recall", "F1", "evaluation labels"), rows)

    @admin.display(description="operating points at the target precision")
    def operating_points_table(self, obj: models.ModelVersion) -> str:
        rows = [
            (
                f"{r.name} ({r.kind})", _fmt(r.threshold), _with_ci(r.precision, r.precision_ci),
                _with_ci(r.recall, r.recall_ci), str(r.n_positives), r.evidence_text,
            )
            for r in presentation.point_rows(obj.metrics or {}, self._classes(obj))
        ]  # fmt: skip
        return _table(
            ("class or tier", "threshold", "precision", "recall", "positives", "evidence"), rows
        )

    @admin.display(description="training parameters")
    def params_table(self, obj: models.ModelVersion) -> str:
        rows = [(str(k), str(v)) for k, v in sorted((obj.params or {}).items())]
        return _table(("parameter", "value"), rows)

    @admin.display(description="training case ids")
    def training_case_ids(self, obj: models.ModelVersion) -> str:
        ids = obj.snapshot_case_ids or []
        if not ids:
            return "Not stored in the database (see the snapshot file in the parameters)."
        return format_html(
            "<details><summary>{} case ids (show)</summary><p>{}</p></details>",
            len(ids),
            ", ".join(str(i) for i in ids),
        )

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
    )
    list_filter = ("model_version__project", "model_version")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "model_version", "predicted_label")
    list_select_related = ("case", "model_version__project", "predicted_label")
    show_full_result_count = False


class IssueStatus:
    """The states of a label issue in the admin list: still to review, or what a decision did."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    EXCLUDED = "excluded"
    ALL = "all"


def _decided(**conditions: Any) -> Exists:
    """Whether the issue's case has a reviewer's or adjudicator's resolution matching."""
    return Exists(
        ResolvedLabel.objects.filter(
            case_id=OuterRef("case_id"), source__in=AUTHORITATIVE_SOURCES, **conditions
        )
    )


class IssueStatusFilter(admin.SimpleListFilter):
    """Open issues by default (in the prune set, not decided, not excluded); or what the
    decisions did: the given label confirmed, corrected to another class, or the case excluded.

    Excluded cases are left out of detection, so an excluded issue shows until the next one.
    """

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (IssueStatus.OPEN, "Open (to review)"),
            (IssueStatus.CONFIRMED, "Given label confirmed"),
            (IssueStatus.CORRECTED, "Corrected"),
            (IssueStatus.EXCLUDED, "Excluded"),
            (IssueStatus.ALL, "All"),
        ]

    def value(self) -> str:
        return str(super().value() or IssueStatus.OPEN)

    def choices(self, changelist: Any) -> Iterator[_ListFilterChoices]:
        # No "All" of Django's own: no parameter means open here, and "all" is a lookup.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == IssueStatus.OPEN:
            settled = ResolvedLabel.objects.filter(case_id=OuterRef("case_id")).filter(
                Q(source__in=AUTHORITATIVE_SOURCES) | Q(excluded=True)
            )
            return queryset.filter(in_prune_set=True).exclude(Exists(settled))
        if value == IssueStatus.CONFIRMED:
            return queryset.filter(
                _decided(excluded=False, label_id=OuterRef("case__given_label_id"))
            )
        if value == IssueStatus.CORRECTED:
            changed = ~Q(label_id=OuterRef("case__given_label_id"))
            return queryset.filter(
                Exists(
                    ResolvedLabel.objects.filter(
                        changed,
                        case_id=OuterRef("case_id"),
                        source__in=AUTHORITATIVE_SOURCES,
                        excluded=False,
                        label__isnull=False,
                    )
                )
            )
        if value == IssueStatus.EXCLUDED:
            return queryset.filter(
                Exists(ResolvedLabel.objects.filter(case_id=OuterRef("case_id"), excluded=True))
            )
        return queryset


class GivenClassFilter(admin.SimpleListFilter):
    """The label the detector doubts, among the classes of the project filtered on (or all,
    named with their project)."""

    title = "class (given label)"
    parameter_name = "given_label"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        classes = LabelClass.objects.select_related("project").order_by("project", "order", "name")
        project = request.GET.get("project__id__exact")
        if project and project.isdigit():
            return [(str(c.pk), str(c)) for c in classes.filter(project_id=int(project))]
        return [(str(c.pk), f"{c.project.slug}: {c}") for c in classes]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and str(value).isdigit():
            return queryset.filter(given_label_id=int(value))
        return queryset


@admin.register(models.LabelIssue)
class LabelIssueAdmin(HistoryAdmin):
    list_display = (
        "case",
        "given_label",
        "suggested_label",
        "score_rounded",
        "suggested_p_rounded",
        "in_prune_set",
        "group_size",
        "decision",
        "detected_at",
    )
    list_filter = (IssueStatusFilter, GivenClassFilter, "project")
    search_fields = ("case__external_id",)
    raw_id_fields = ("case", "given_label", "suggested_label", "job")
    list_select_related = ("case__project", "case__resolved", "given_label", "suggested_label")
    ordering = ("-score", "pk")
    show_full_result_count = False

    @admin.display(description="score", ordering="score")
    def score_rounded(self, obj: models.LabelIssue) -> str:
        return f"{obj.score:.3f}"

    @admin.display(description="suggestion's p", ordering="suggested_p")
    def suggested_p_rounded(self, obj: models.LabelIssue) -> str:
        return "-" if obj.suggested_p is None else f"{obj.suggested_p:.3f}"

    @admin.display(description="group")
    def group_size(self, obj: models.LabelIssue) -> int:
        return len(obj.group or [])

    @admin.display(description="decision")
    def decision(self, obj: models.LabelIssue) -> str:
        resolved = getattr(obj.case, "resolved", None)
        if resolved is None or resolved.source not in AUTHORITATIVE_SOURCES:
            return "-"
        if resolved.excluded:
            return "excluded"
        if resolved.label_id is None:
            return "ambiguous"
        return "confirmed" if resolved.label_id == obj.case.given_label_id else "corrected"


@admin.register(models.LabelNoiseEstimate)
class LabelNoiseEstimateAdmin(HistoryAdmin):
    """Written by the review-items step of every retrain; read-only."""

    list_display = (
        "measured_at",
        "project",
        "label_source",
        "given_label",
        "reviewed",
        "wrong",
        "excluded",
        "wrong_rate",
        "job",
    )
    list_filter = ("project", "label_source")
    search_fields = ("given_label__name", "project__name")
    list_select_related = ("project", "given_label", "job")
    show_full_result_count = False

    @admin.display(description="wrong / reviewed")
    def wrong_rate(self, obj: models.LabelNoiseEstimate) -> str:
        rate = obj.wrong_fraction
        return "-" if rate is None else f"{rate:.3f}"


@admin.register(models.EvaluationDesign)
class EvaluationDesignAdmin(HistoryAdmin):
    """The evaluation sample's design, made by the refresh step; read-only. A case's inclusion
    probability is min(1, t x size), t the key of the next case still to draw."""

    list_display = ("case", "project", "stratum", "size", "key", "model_version")
    list_filter = ("project",)
    search_fields = ("case__external_id",)
    list_select_related = ("case", "project", "stratum", "model_version")
    raw_id_fields = ("case",)
    show_full_result_count = False


@admin.register(models.DashboardSnapshot)
class DashboardSnapshotAdmin(HistoryAdmin):
    """The dashboard's figures as a worker last counted them (the retrain's last step, or a
    page's request); read-only."""

    list_display = ("project", "counted_at", "champion", "requested_at")
    list_filter = ("project",)
    search_fields = ("project__name", "project__slug")
    list_select_related = ("project", "champion")
    show_full_result_count = False
