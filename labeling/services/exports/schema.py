"""The export's fixed columns, in file order, with their Parquet types and meaning.

`CASE_COLUMNS` is one row per case; `ANNOTATION_COLUMNS` one row per annotation (`--include
provenance`: a list column `annotations` in JSONL and Parquet, a second CSV file keyed by
`external_id` in CSV mode). The README's column section is written from these descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_VERSION = 1
MANIFEST_KIND = "workbench-case-export"
# Parquet key-value metadata that marks a file as this export (the manifest's twin, in-band).
PARQUET_MARKER = b"workbench_export"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string, json, float, bool, int, timestamp
    doc: str


CASE_COLUMNS: tuple[Column, ...] = (
    Column("external_id", "string", "The case's id, as imported."),
    Column("text", "string", "The business description, as imported (or last updated)."),
    Column(
        "metadata",
        "json",
        "Every other imported column, a JSON object (an object in JSONL, JSON text in CSV "
        "and Parquet).",
    ),
    Column("split", "string", "`pool` or `eval` (the evaluation split: never trains)."),
    Column("given_label", "string", "The imported (possibly noisy) label's class name."),
    Column("given_label_source", "string", "Who gave it (an import column; `import` if none)."),
    Column(
        "final_label",
        "string",
        "The resolved label's class name; the given label when nothing resolved it yet; "
        "empty when a decision gave no class.",
    ),
    Column(
        "final_label_source",
        "string",
        "Where the final label comes from: given, annotation, consensus, review, adjudicated.",
    ),
    Column(
        "confidence",
        "float",
        "The resolution's confidence: the consensus posterior, or the model probability "
        "the resolution recorded; empty when none.",
    ),
    Column("agreement", "float", "Share of current analyst labels that agree with it."),
    Column("doubtful", "bool", "A given label with an open high-score issue or a noise flag."),
    Column("excluded", "bool", "Taken out of the dataset by a reviewer (default exports omit)."),
    Column("excluded_reason", "string", "The reviewer's reason for the exclusion."),
    Column(
        "stale",
        "bool",
        "Some current annotation was made on an older text of the case (kept, not counted).",
    ),
    Column(
        "label_issue_score",
        "float",
        "Label-error detection: higher when the checked label is more likely wrong (pool and "
        "evaluation cases alike; an evaluation case is scored by the pool's fold models, which "
        "never trained on it).",
    ),
    Column("suggested_label", "string", "The detector's out-of-fold suggestion (class name)."),
    Column("predicted_label", "string", "The champion model's predicted class."),
    Column("predicted_probability", "float", "Its calibrated probability of that class."),
    Column("model_version", "int", "The champion's version number that scored the case."),
    Column("analyst_labels", "int", "Current, non-stale analyst labels (skips not counted)."),
    Column("changed_at", "timestamp", "When the case, its given or final label last changed."),
    # Added after the first version's columns, at the end: an export's header still starts with
    # `HEADER_PREFIX`, which is how an earlier export is recognised on re-import too.
    Column(
        "label_issue_flagged",
        "bool",
        "The detector flags the label as probably wrong: `suggested_label` is a suggested "
        "correction, for people to decide (it never changes `final_label`).",
    ),
    Column(
        "suggested_probability",
        "float",
        "The suggestion's out-of-fold probability.",
    ),
    Column(
        "suggested_by",
        "string",
        "The detection views that flag the label and agree on the suggestion, comma-separated "
        "(e.g. `confident_learning`); empty when none does.",
    ),
)

ANNOTATION_COLUMNS: tuple[Column, ...] = (
    Column("annotation_id", "int", "The annotation's id (unique in the workbench)."),
    Column("annotator", "string", "The analyst's user name."),
    Column("label", "string", "The class given (empty for a skip or a flag only)."),
    Column("source", "string", "queue, review or adjudication."),
    Column("skipped", "bool", "The analyst skipped the case."),
    Column("noise_flag", "bool", "The analyst flagged the given label as wrong."),
    Column("ambiguous", "bool", "The analyst marked the case ambiguous."),
    Column("exclude", "bool", "A reviewer's decision to exclude the case."),
    Column("exclude_reason", "string", "Why."),
    Column("comment", "string", "The analyst's comment."),
    Column("duration_ms", "int", "Time spent on the card, in milliseconds."),
    Column("shown", "json", "What the card showed: suggestion, model version, given label."),
    Column("stale", "bool", "Made on an older text of the case."),
    Column("superseded", "bool", "Replaced by a later edit or undone."),
    Column("created_at", "timestamp", "When it was submitted."),
)

CASE_NAMES: tuple[str, ...] = tuple(c.name for c in CASE_COLUMNS)
# The first export version's columns: every export's header starts with them.
HEADER_PREFIX: tuple[str, ...] = CASE_NAMES[: CASE_NAMES.index("changed_at") + 1]
ANNOTATION_NAMES: tuple[str, ...] = tuple(c.name for c in ANNOTATION_COLUMNS)
# In CSV mode the annotations file starts with the case's id.
ANNOTATION_CSV_NAMES: tuple[str, ...] = ("external_id", *ANNOTATION_NAMES)
PROVENANCE_COLUMN = "annotations"


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "json": pa.string(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "int": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[kind]


@cache
def annotation_struct() -> pa.StructType:
    import pyarrow as pa

    return pa.struct([pa.field(c.name, _arrow_type(c.kind)) for c in ANNOTATION_COLUMNS])


@cache
def parquet_schema(provenance: bool) -> pa.Schema:
    """The fixed Parquet schema: CASE_COLUMNS, plus `annotations: list<struct>` with provenance."""
    import pyarrow as pa

    fields = [pa.field(c.name, _arrow_type(c.kind)) for c in CASE_COLUMNS]
    if provenance:
        fields.append(pa.field(PROVENANCE_COLUMN, pa.list_(annotation_struct())))
    return pa.schema(fields, metadata={PARQUET_MARKER: str(FORMAT_VERSION).encode()})
