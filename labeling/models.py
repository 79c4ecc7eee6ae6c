"""Projects, label classes, cases, annotations, the queue and resolved labels.

Invariants DESIGN.md states are database constraints here, so no code path can break them:
unique external ids per project, unique submission ids, shortcut keys unique per project and never
reserved, one analyst never holding two items of one case, and valid enum values.
"""

from __future__ import annotations

import random
import secrets
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from workbench.db import choices_check, unit_interval_check

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The queue page's own keys; a label class can never take one (DESIGN "Reserved queue keys").
# y keeps the given label, x excludes the case, m applies a review to its near-duplicates too.
RESERVED_KEYS: tuple[str, ...] = ("Enter", "n", "a", "c", "s", "u", "g", "?", "y", "x", "m")
# Keys offered to label classes, in order: digits first, then the free letters.
SHORTCUT_KEY_ORDER: tuple[str, ...] = tuple("123456789") + tuple(
    k for k in "bdefhijklmopqrtvwxyz" if k not in RESERVED_KEYS
)


# A given label's source when the import names none.
IMPORT_SOURCE = "import"


def _new_split_seed() -> int:
    return secrets.randbelow(2**31)


def _new_random_key() -> float:
    # Services set a seeded key (labeling.services.queue); this default covers other writers.
    return random.random()


class Strategy(models.TextChoices):
    RANDOM = "random", "Random"
    LEAST_CONFIDENCE = "least_confidence", "Least confidence"
    MARGIN = "margin", "Margin"
    ENTROPY = "entropy", "Entropy"
    COMMITTEE = "committee", "Query by committee"
    DIVERSITY = "diversity", "Margin with k-means diversity"
    DENSITY = "density", "Entropy weighted by density"


class EmbeddingBackend(models.TextChoices):
    """How case texts become vectors (`active_learning.ml.embeddings.BACKENDS`)."""

    TORCH = "torch", "MiniLM (full precision)"
    ONNX_INT8 = "onnx-int8", "MiniLM through ONNX Runtime, int8 (faster, same accuracy)"
    STATIC = "static", "Static MiniLM distillation (fastest, less accurate)"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members: models.ManyToManyField[User, ProjectMembership] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects", blank=True
    )
    batch_size = models.PositiveIntegerField(default=50, validators=[MinValueValidator(1)])
    retrain_after_n = models.PositiveIntegerField(
        default=50,
        help_text="Retrain after this many new labels.",
        validators=[MinValueValidator(1)],
    )
    strategy = models.CharField(max_length=32, choices=Strategy.choices, default=Strategy.DIVERSITY)
    overlap = models.PositiveSmallIntegerField(
        default=1,
        help_text="Labels wanted per overlapped case (k).",
        validators=[MinValueValidator(1), MaxValueValidator(10)],
    )
    overlap_fraction = models.FloatField(
        default=0.0,
        help_text="Share of cases that get `overlap` labels; the rest get one.",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    evaluation_fraction = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    # 1: in the loop benchmark (2026-12-04) two analysts made the evaluation labels 99.3% right
    # (one: 86.9-90%) but half as many (137 vs 275 at 1,000 labels), the first champion change
    # came at 208 labels (one, same day: 166) and the ranking of the model versions was no
    # better. 2 is for teams who would pay double for accurate evaluation labels.
    evaluation_overlap = models.PositiveSmallIntegerField(
        default=1,
        help_text="Analysts' labels wanted per evaluation case (1 by default); with 2 or more, "
        "a tie goes to a reviewer, whose decision is the evaluation label. 2 makes evaluation "
        "labels far more accurate but costs twice the labels per case: fewer evaluation labels "
        "and a longer warm-up.",
        validators=[MinValueValidator(1), MaxValueValidator(10)],
    )
    warmup_evaluation_fraction = models.FloatField(
        default=0.3,
        help_text="Share of claims drawn from the evaluation split while its labels are too few "
        "to judge a challenger (then the evaluation fraction applies).",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    # Set by each retrain: whether the evaluation labels are still too few for the main
    # promotion rule (the claim draw then uses warmup_evaluation_fraction).
    evaluation_evidence_short = models.BooleanField(default=True, editable=False)
    target_precision = models.FloatField(
        default=0.99, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    # 1: a kept given label counts as much as an analyst's. Given labels the detector doubts are
    # left out, and the rest were less often wrong than analysts' resolved labels in the loop
    # benchmark (2.7% vs 5.6%). Offline on its data with 1,000 analysts' labels, 1 against 0.5
    # gave test macro-F1 0.851 vs 0.844 with C tuned, 0.847 vs 0.847 at a fixed C (README, loop):
    # the weight also scales the regularisation. Changes the default for new projects only.
    given_label_weight = models.FloatField(
        default=1.0,
        help_text="Weight of imported labels in training, 0 (analysts only) to 1.",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    classes_fixed = models.BooleanField(
        default=True, help_text="Imports may not create new label classes."
    )
    blind_mode = models.BooleanField(
        default=False, help_text="Hide suggestions and given labels from analysts."
    )
    consensus_threshold = models.FloatField(
        default=0.8,
        help_text="Cases whose consensus posterior is below this go to adjudication.",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    noise_aware_overlap = models.BooleanField(
        default=True,
        help_text="Give a second analyst to picks the model is unsure of or in the prohibited tier.",
    )
    overlap_margin = models.FloatField(
        default=0.2,
        help_text="Noise-aware overlap: picks whose model margin (top two classes) is below this.",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    overlap_budget = models.FloatField(
        default=0.2,
        help_text="At most this share of queued pool cases get a noise-aware second analyst.",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    gold_fraction = models.FloatField(
        default=0.02,
        help_text="Share of an analyst's cards that are decided cases served back to measure them.",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    claim_policy = models.JSONField(
        default=dict,
        blank=True,
        help_text='Queue kinds each role takes, in order, e.g. {"reviewer": ["adjudication", '
        '"review", "pool"]}; "draw" is the seeded evaluation-or-pool draw. Empty: the default.',
    )
    embedding_backend = models.CharField(
        max_length=16,
        choices=EmbeddingBackend.choices,
        default=EmbeddingBackend.TORCH,
        help_text="How texts become vectors. ONNX int8 has full precision's accuracy and is "
        "faster (1.6x on CPUs without VNNI, more with it). Static is over 100x faster but about "
        "3.6 points less accurate: use it only for pools too large to embed otherwise, and "
        "switch back if the dashboard shows a loss of more than 4 points. A change re-embeds the "
        "cases in the background while the current model keeps serving.",
    )
    # The vectors the project's models train on now (blank: EMBEDDING_MODEL, the torch one). It
    # follows `embedding_backend` once the embedding job has embedded every case with it.
    embedding_model = models.CharField(max_length=200, blank=True, editable=False)
    split_seed = models.BigIntegerField(default=_new_split_seed, editable=False)
    labels_since_training = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Granted through the groups analyst, reviewer and admin (created by a migration).
        permissions = [
            ("label_cases", "Can label cases in the queue of projects they are a member of"),
            ("review_cases", "Can search cases and label them outside queue order"),
            ("administer_project", "Can import, retrain, promote and change project settings"),
        ]
        constraints = [
            choices_check("strategy", Strategy, "project_strategy_valid"),
            choices_check("embedding_backend", EmbeddingBackend, "project_embedding_backend_valid"),
            unit_interval_check("overlap_fraction", "project_overlap_fraction_unit"),
            unit_interval_check("evaluation_fraction", "project_evaluation_fraction_unit"),
            unit_interval_check(
                "warmup_evaluation_fraction", "project_warmup_evaluation_fraction_unit"
            ),
            unit_interval_check("target_precision", "project_target_precision_unit"),
            unit_interval_check("given_label_weight", "project_given_label_weight_unit"),
            unit_interval_check("consensus_threshold", "project_consensus_threshold_unit"),
            unit_interval_check("overlap_margin", "project_overlap_margin_unit"),
            unit_interval_check("overlap_budget", "project_overlap_budget_unit"),
            unit_interval_check("gold_fraction", "project_gold_fraction_unit"),
            models.CheckConstraint(
                condition=Q(overlap__gte=1, overlap__lte=10), name="project_overlap_range"
            ),
            models.CheckConstraint(
                condition=Q(evaluation_overlap__gte=1, evaluation_overlap__lte=10),
                name="project_evaluation_overlap_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from labeling.services.queue.policy import policy_problems

        if self.claim_policy and (problems := policy_problems(self.claim_policy)):
            raise ValidationError({"claim_policy": problems})


class ProjectRole(models.TextChoices):
    ANALYST = "analyst", "Analyst"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=ProjectRole.choices, default=ProjectRole.ANALYST)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            choices_check("role", ProjectRole, "membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Tier(models.TextChoices):
    SUPPORTABLE = "supportable", "Supportable"
    RESTRICTED = "restricted", "Restricted"
    PROHIBITED = "prohibited", "Prohibited"


class LabelClassQuerySet(models.QuerySet["LabelClass"]):
    def update(self, **kwargs: Any) -> int:
        # bulk_update comes through here too.
        kwargs.setdefault("version", models.F("version") + 1)
        return super().update(**kwargs)


class LabelClass(models.Model):
    """A class of a project. `version` grows with every change of the row (`save`, `update`):
    with the count and the highest id of a project's classes it keys the per-process cache of
    them (`labeling.selectors_queue.project_classes_by_id`), so an edit, an insert (ids only
    grow) or a delete shows on the next page any process renders."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    display_name = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.SUPPORTABLE)
    description = models.TextField(
        blank=True, help_text="Shown to analysts; also feeds the zero-shot cold start."
    )
    guideline = models.TextField(blank=True, help_text="How to decide, with examples.")
    examples = models.JSONField(default=list, blank=True, help_text="Example texts (list).")
    shortcut_key = models.CharField(max_length=1)
    order = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    objects = LabelClassQuerySet.as_manager()

    class Meta:
        ordering = ["project", "order", "name"]
        verbose_name_plural = "label classes"
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="labelclass_name_unique"),
            models.UniqueConstraint(
                fields=["project", "shortcut_key"], name="labelclass_shortcut_unique"
            ),
            models.CheckConstraint(
                condition=~Q(shortcut_key__in=RESERVED_KEYS) & Q(shortcut_key__regex=r"^[0-9a-z]$"),
                name="labelclass_shortcut_not_reserved",
            ),
            choices_check("tier", Tier, "labelclass_tier_valid"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name

    def save(self, **kwargs: Any) -> None:
        if not self._state.adding:
            # In SQL, so two concurrent edits of a row make two versions.
            self.version = models.F("version") + 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
        super().save(**kwargs)
        if not isinstance(self.version, int):
            self.refresh_from_db(fields=["version"])


class Split(models.TextChoices):
    POOL = "pool", "Pool"
    EVAL = "eval", "Evaluation"


class Case(models.Model):
    # No index of its own: case_external_id_unique leads with the project (every index on this
    # table costs each label's write of changed_at, which cannot be a HOT update).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="cases", db_index=False
    )
    external_id = models.CharField(max_length=200)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    given_label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="given_cases"
    )
    given_label_source = models.CharField(
        max_length=64,
        default=IMPORT_SOURCE,
        db_default=IMPORT_SOURCE,  # bulk writers (COPY) that name no source get it too
        help_text="Who gave the given label: a legacy rule, team or vendor (an import column).",
    )
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.POOL)
    content_hash = models.CharField(max_length=64)  # indexed in Meta: equality only, no LIKE
    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The search's default order ("last change"). Set by the import, a text or given-label
    # update, and every change of the resolved label by a person or the consensus step; not by
    # the detector's doubtful marks (a retrain may touch a fifth of the cases).
    changed_at = models.DateTimeField(
        default=timezone.now,
        db_default=Now(),  # bulk writers (COPY) that name no column get it too
        help_text="When the case, its given label or its resolved label last changed.",
    )

    class Meta:
        ordering = ["project", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="case_external_id_unique"
            ),
            choices_check("split", Split, "case_split_valid"),
        ]
        indexes = [
            models.Index(fields=["project", "split"], name="case_project_split"),
            # The search's default order, newest change first, and its date filter; PostgreSQL
            # also has a full-text and an id-prefix index (migrations 0003, 0011).
            models.Index(fields=["project", "changed_at", "id"], name="case_project_changed"),
            models.Index(fields=["content_hash"], name="case_content_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}:{self.external_id}"


class SyntheticTruth(models.Model):
    """The true label of a generated case: read by benchmarks and demo figures, never by analysts."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="synthetic_truth")
    true_label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="+")
    noise_kind = models.CharField(max_length=16, blank=True, help_text="none, uniform or neighbour")

    class Meta:
        verbose_name_plural = "synthetic truths"

    def __str__(self) -> str:
        return f"{self.case} is {self.true_label}"


class QueueStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class QueueKind(models.TextChoices):
    """What an item asks for, and who may take it (`labeling.services.queue.policy`)."""

    POOL = "pool", "Pool"
    EVALUATION = "evaluation", "Evaluation"
    REVIEW = "review", "Review"
    ADJUDICATION = "adjudication", "Adjudication"
    # A decided case served back to an analyst, unmarked, to measure their accuracy.
    GOLD = "gold", "Gold"


class QueueItem(models.Model):
    """One wanted label of a case: overlap k gives k items with slots 0..k-1.

    The model facts (`model_version_id`, `suggestion`, `suggestion_p`, `alternatives`) and the
    `reason` are written by the pipeline when it makes or refreshes the item
    (`labeling.contracts`); the card shows them as stored.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queue_items")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="queue_items")
    slot = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=QueueKind.choices, default=QueueKind.POOL)
    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    reason = models.JSONField(
        default=dict, blank=True, help_text="A PickReason: strategy, facts and sentences."
    )
    # The id of the model version whose facts the item carries; no foreign key, since labeling
    # never depends on the model side (the version may be pruned; the facts stay as shown).
    model_version_id = models.BigIntegerField(null=True, blank=True)
    suggestion = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    suggestion_p = models.FloatField(null=True, blank=True)
    alternatives = models.JSONField(
        default=list, blank=True, help_text="[[class id, probability], ...] after the suggestion."
    )
    similar_cases = models.JSONField(default=list, blank=True)
    group = models.JSONField(
        default=list,
        blank=True,
        help_text="Review items: ids of near-duplicate cases with the same given label and issue, "
        "to which the reviewer may apply the decision too.",
    )
    status = models.CharField(max_length=16, choices=QueueStatus.choices, default=QueueStatus.OPEN)
    assigned_to = models.ForeignKey(  # indexed by queueitem_assignee_status, which leads with it
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="queue_items",
        db_index=False,
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    random_key = models.FloatField(
        default=_new_random_key,
        help_text="Uniform in [0, 1), fixed at creation: evaluation items are served in this order.",
    )
    front_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when an undo returns the item to its analyst: served before other held items.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            choices_check("status", QueueStatus, "queueitem_status_valid"),
            choices_check("kind", QueueKind, "queueitem_kind_valid"),
            # One analyst never holds or labels two items of the same case.
            models.UniqueConstraint(
                fields=["case", "assigned_to"],
                condition=Q(status__in=["claimed", "done"]) & Q(assigned_to__isnull=False),
                name="queueitem_one_per_analyst_case",
            ),
            models.UniqueConstraint(
                fields=["case", "slot"],
                condition=~Q(status="cancelled"),
                name="queueitem_case_slot_unique",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(assigned_to__isnull=False) | Q(status="cancelled"),
                name="queueitem_claimed_has_assignee",
            ),
        ]
        indexes = [
            # The claim query reads only open items, best first.
            models.Index(
                fields=["project", "kind", "-priority", "id"],
                condition=Q(status="open"),
                name="queueitem_open_claim",
            ),
            # Evaluation items are served in random order, never by priority.
            models.Index(
                fields=["project", "random_key", "id"],
                condition=Q(status="open", kind="evaluation"),
                name="queueitem_open_eval",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="claimed"),
                name="queueitem_claimed_lease",
            ),
            models.Index(fields=["assigned_to", "status"], name="queueitem_assignee_status"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of {self.case_id} ({self.status})"


class QueueCursor(models.Model):
    """Per analyst and project: how many items they have claimed, which seeds the eval draw.

    The claim locks this row first, so one analyst's concurrent claims (two tabs) run one at a time.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    analyst = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    claims = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "analyst"], name="queuecursor_unique")
        ]

    def __str__(self) -> str:
        return f"{self.analyst_id} in {self.project_id}: {self.claims} claims"


class AnnotationSource(models.TextChoices):
    QUEUE = "queue", "Queue"
    REVIEW = "review", "Review"
    ADJUDICATION = "adjudication", "Adjudication"


class Annotation(models.Model):
    """One analyst's answer; never deleted: an edit or undo supersedes it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(  # indexed by annotation_by_annotator, which leads with it
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="annotations",
        db_index=False,
    )
    queue_item = models.ForeignKey(
        QueueItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations"
    )
    skipped = models.BooleanField(default=False)
    skip_reason = models.CharField(max_length=500, blank=True)
    noise_flag = models.BooleanField(default=False, help_text="The given label is wrong.")
    ambiguous = models.BooleanField(default=False)
    exclude = models.BooleanField(
        default=False, help_text="A reviewer's decision: the case leaves the dataset."
    )
    exclude_reason = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)
    group_decision = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="group_members",
        help_text="The reviewer's decision on another case that this annotation applies here.",
    )
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    shown = models.JSONField(
        default=dict, blank=True, help_text="Suggestion, its model version, given label, blind."
    )
    source = models.CharField(
        max_length=16, choices=AnnotationSource.choices, default=AnnotationSource.QUEUE
    )
    submission_id = models.UUIDField(unique=True)
    content_hash = models.CharField(max_length=64)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    superseded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [choices_check("source", AnnotationSource, "annotation_source_valid")]
        indexes = [
            models.Index(
                fields=["case"], condition=Q(superseded_at__isnull=True), name="annotation_current"
            ),
            models.Index(fields=["annotator", "-created_at"], name="annotation_by_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on {self.case_id}: {self.label_id}"


class QueueActionKind(models.TextChoices):
    LABEL = "label", "Label"
    EDIT = "edit", "Edit"
    SKIP = "skip", "Skip"


class QueueAction(models.Model):
    """One entry of an analyst's undo stack: the annotation an action wrote (and what it replaced).

    Only the newest UNDO_DEPTH entries per analyst and project can be undone; rows are history.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    analyst = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=QueueActionKind.choices)
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="+")
    previous = models.ForeignKey(
        Annotation, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [choices_check("kind", QueueActionKind, "queueaction_kind_valid")]
        indexes = [
            models.Index(fields=["analyst", "project", "-id"], name="queueaction_stack"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.analyst_id} ({self.annotation_id})"


class ResolutionSource(models.TextChoices):
    GIVEN = "given", "Given"
    ANNOTATION = "annotation", "Annotation"
    CONSENSUS = "consensus", "Consensus"
    REVIEW = "review", "Review"
    ADJUDICATED = "adjudicated", "Adjudicated"


class ResolvedLabel(models.Model):
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="resolved")
    label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(
        max_length=16, choices=ResolutionSource.choices, default=ResolutionSource.GIVEN
    )
    confidence = models.FloatField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    doubtful = models.BooleanField(
        default=False, help_text="A given label with an open high-score issue or a noise flag."
    )
    excluded = models.BooleanField(
        default=False,
        help_text="Out of the dataset (a reviewer's exclusion): never trains or evaluates.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            choices_check("source", ResolutionSource, "resolved_source_valid"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="resolved_confidence_unit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.label_id} ({self.source})"


class CaseConsensus(models.Model):
    """Dawid-Skene's answer for one case with analyst labels, from the latest consensus step.

    `posterior` is the consensus label's probability; `given_disagrees` whether the given label is
    another class; `analyst_labels` the current analyst labels behind it (the resolution uses
    consensus from two on).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="consensus")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="+")
    posterior = models.FloatField()
    given_disagrees = models.BooleanField(default=False)
    analyst_labels = models.PositiveSmallIntegerField()
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "case consensus"
        constraints = [unit_interval_check("posterior", "caseconsensus_posterior_unit")]
        indexes = [models.Index(fields=["project", "posterior"], name="caseconsensus_posterior")]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.label_id} ({self.posterior:.2f})"


class AnnotatorReliability(models.Model):
    """How reliable one annotator is, as one consensus step estimated it: an analyst, or a
    given-label source (a legacy rule, team or vendor) counted as one more annotator.

    `confusion` is {"classes": [class ids], "matrix": [[P(says column | truly row)]]};
    `labels` the labels behind it; `gold_labels`/`gold_correct` the analyst's answers on gold
    items (decided cases served back) and how many matched the decision.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reliabilities")
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    label_source = models.CharField(max_length=64, blank=True)
    accuracy = models.FloatField()
    confusion = models.JSONField(default=dict)
    labels = models.PositiveIntegerField()
    gold_labels = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    measured_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "annotator reliabilities"
        ordering = ["project", "-measured_at", "label_source", "annotator"]
        constraints = [
            unit_interval_check("accuracy", "reliability_accuracy_unit"),
            # Either an analyst or a given-label source, never both.
            models.CheckConstraint(
                condition=(Q(annotator__isnull=False) & Q(label_source=""))
                | (Q(annotator__isnull=True) & ~Q(label_source="")),
                name="reliability_one_annotator",
            ),
            models.CheckConstraint(
                condition=Q(gold_correct__lte=models.F("gold_labels")),
                name="reliability_gold_within",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-measured_at"], name="reliability_project_time")
        ]

    def __str__(self) -> str:
        who = self.label_source or f"analyst {self.annotator_id}"
        return f"{who}: {self.accuracy:.2f} over {self.labels}"


class AgreementReport(models.Model):
    """Agreement between analysts at one consensus step, each figure with its bootstrap 95%
    interval and the number of cases behind it.

    `class_pairs`: [{"a", "b", "value", "low", "high", "n"}], the alpha of two class ids over the
    n cases that use only those two (how reliably analysts tell them apart), worst first;
    `analyst_pairs`: the same keys, Cohen's kappa of two analysts' user ids on their n shared
    cases (pairs with >= 20 of them).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agreements")
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL)
    alpha = models.FloatField(null=True, blank=True)
    alpha_low = models.FloatField(null=True, blank=True)
    alpha_high = models.FloatField(null=True, blank=True)
    cases = models.PositiveIntegerField(default=0)
    class_pairs = models.JSONField(default=list, blank=True)
    analyst_pairs = models.JSONField(default=list, blank=True)
    measured_at = models.DateTimeField()

    class Meta:
        get_latest_by = "measured_at"
        indexes = [models.Index(fields=["project", "-measured_at"], name="agreement_project_time")]

    def __str__(self) -> str:
        return f"alpha {self.alpha} over {self.cases} cases"
