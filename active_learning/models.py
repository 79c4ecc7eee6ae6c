"""Embeddings, model versions, predictions and label issues: the pipeline's durable state.

Vectors are float32 bytes keyed by (model name, content hash), so a text is embedded once however
many cases carry it. Everything a worker needs lives here or under WORKBENCH_DATA_DIR.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from labeling.models import IMPORT_SOURCE, Case, LabelClass, Project
from workbench.core.models import Job
from workbench.db import choices_check


class Embedding(models.Model):
    model_name = models.CharField(max_length=200)
    content_hash = models.CharField(max_length=64)
    dim = models.PositiveSmallIntegerField()
    vector = models.BinaryField(help_text="float32, little-endian, `dim` values")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_name", "content_hash"], name="embedding_model_hash_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_name}:{self.content_hash[:12]}"


class ModelStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    CHAMPION = "champion", "Champion"
    RETIRED = "retired", "Retired"
    FAILED = "failed", "Failed"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.TRAINING
    )
    embedding_model = models.CharField(max_length=200, blank=True)
    estimator = models.CharField(max_length=64, blank=True)
    calibration = models.CharField(max_length=32, blank=True)
    params = models.JSONField(default=dict, blank=True)
    snapshot_hash = models.CharField(max_length=64, blank=True)
    snapshot_case_ids = models.JSONField(default=list, blank=True)
    n_train = models.PositiveIntegerField(default=0)
    n_eval = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    decision = models.JSONField(
        default=dict, blank=True, help_text="Promotion decision and values."
    )
    decision_reason = models.TextField(blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "number"], name="modelversion_number_unique"
            ),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status="champion"),
                name="modelversion_one_champion",
            ),
            choices_check("status", ModelStatus, "modelversion_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} v{self.number} ({self.status})"


class Prediction(models.Model):
    """A model's view of a case: full rows (top-k) for candidates, eval and stop set; compact else.

    A case's label-issue score is not here: it is the detector's, not a model version's, and
    lives on `LabelIssue` alone (every page and the export read it there).
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="predictions"
    )
    predicted_label = models.ForeignKey(
        LabelClass, null=True, on_delete=models.CASCADE, related_name="+"
    )
    confidence = models.FloatField()
    uncertainty = models.FloatField(null=True, blank=True)
    top_k = models.JSONField(null=True, blank=True, help_text="[[class_id, probability], ...]")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "case"], name="prediction_version_case_unique"
            )
        ]
        indexes = [
            models.Index(fields=["case", "model_version"], name="prediction_case_version"),
            # A top-up from stored scores reads a version's rows with top-k (the reserve of the
            # most uncertain, the stop set) in a measure's order, from its first rows on:
            # partial, so writing a million compact rows does not maintain them.
            models.Index(
                fields=["model_version", "-uncertainty", "case"],
                condition=Q(top_k__isnull=False),
                name="prediction_version_uncertainty",
            ),
            models.Index(
                fields=["model_version", "confidence", "case"],
                condition=Q(top_k__isnull=False),
                name="prediction_version_confidence",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.model_version_id} on {self.case_id}: {self.predicted_label_id}"


class LabelIssue(models.Model):
    """The latest label-issue detection for a case's label: one row per scored case, pool and
    evaluation split alike (the one place a case's label-issue score lives).

    `score` is higher when the label is more likely wrong; `in_prune_set` is the detector's
    verdict (confident learning, prune by both); `suggested_label` is the out-of-fold argmax,
    with its out-of-fold probability `suggested_p`; `views` names the detection views that flag
    the case and agree on that suggestion (empty or NULL when none does); `group` lists the
    near-duplicates (prune-set cases with the same given and suggested labels, cosine >=
    GROUP_COSINE) a review may extend to.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_issues")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="label_issue")
    given_label = models.ForeignKey(
        LabelClass, null=True, on_delete=models.CASCADE, related_name="+"
    )
    suggested_label = models.ForeignKey(
        LabelClass, null=True, on_delete=models.CASCADE, related_name="+"
    )
    suggested_p = models.FloatField(null=True, blank=True)
    score = models.FloatField()
    self_confidence = models.FloatField()
    in_prune_set = models.BooleanField(default=False)
    group = models.JSONField(default=list, blank=True, null=True)
    # NULL allowed as for `group`: PostgreSQL's binary COPY writes fixed-width columns only,
    # the few flagged rows' views are set by one UPDATE after it.
    views = models.JSONField(default=list, blank=True, null=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    detected_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-score"], name="labelissue_project_score"),
            models.Index(
                fields=["project"], condition=Q(in_prune_set=True), name="labelissue_prune_set"
            ),
        ]

    def __str__(self) -> str:
        return f"issue on {self.case_id}: {self.score:.2f}"


class LabelNoiseEstimate(models.Model):
    """The measured noise of the legacy labels of one class and source, at one retrain.

    Of the cases with given label `given_label` (from `label_source`) that a reviewer or
    adjudicator decided, `reviewed` counts them, `wrong` those the decision gave another class,
    `excluded` those it took out of the dataset. `wrong / reviewed` is the measured error rate.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="noise_estimates")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    label_source = models.CharField(max_length=64, default=IMPORT_SOURCE)
    given_label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="+")
    reviewed = models.PositiveIntegerField()
    wrong = models.PositiveIntegerField()
    excluded = models.PositiveIntegerField()
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["project", "-measured_at", "label_source", "given_label"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "label_source", "given_label"], name="noiseestimate_one_per_job"
            ),
            models.CheckConstraint(
                condition=Q(wrong__lte=models.F("reviewed"))
                & Q(excluded__lte=models.F("reviewed")),
                name="noiseestimate_counts_within_reviewed",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-measured_at"], name="noiseestimate_project_time")
        ]

    def __str__(self) -> str:
        return f"{self.label_source}/{self.given_label_id}: {self.wrong}/{self.reviewed} wrong"

    @property
    def wrong_fraction(self) -> float | None:
        return self.wrong / self.reviewed if self.reviewed else None


class EvaluationDesign(models.Model):
    """How likely an evaluation-split case is to be drawn for an evaluation label (one per case).

    The draw is stratified by the predicted class (`stratum`) of the model that made the design
    (`model_version`, None for a uniform design made before any model) and fixed from then on, so
    inverse-inclusion-probability weights stay exact (`active_learning.ml.evaluation_design`):
    cases are drawn in ascending `key`, and a case's inclusion probability is
    min(1, t * `size`) with t the key of the next case still to draw.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="evaluation_design")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="evaluation_design")
    stratum = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    size = models.FloatField(help_text="Size measure: the case's share of the draw.")
    key = models.FloatField(help_text="Draw key u / size: lower keys are drawn first.")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "key"], name="evaldesign_project_key")]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="evaldesign_size_positive"),
        ]

    def __str__(self) -> str:
        return f"design of case {self.case_id}: size {self.size:.2e}"


class DashboardSnapshot(models.Model):
    """The dashboard's expensive figures for one project, computed in the background.

    `counts` are the data quality counts over every case (one pass over a million rows each),
    `evaluation` the reliability bins and top confusions of `champion` on the evaluation labels,
    `stop_set` the recent champions' stop-set predictions (`model_panel.stop_set_patterns`),
    `people` each analyst's answers in the people panel's window (`people_panel.window_compute`);
    all as of `counted_at` (None until first computed). `requested_at` is when a page found no
    usable snapshot and asked a worker for one (pages never compute these inline).
    """

    project = models.OneToOneField(
        Project, primary_key=True, on_delete=models.CASCADE, related_name="dashboard_snapshot"
    )
    counted_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(null=True, blank=True)
    champion = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evaluation = models.JSONField(null=True, blank=True)
    stop_set = models.JSONField(null=True, blank=True)
    people = models.JSONField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"dashboard snapshot of project {self.project_id} at {self.counted_at}"
