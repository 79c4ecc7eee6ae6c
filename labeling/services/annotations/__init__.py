"""Analysts' answers and reviewers' decisions: submit, review, skip, edit and undo, each
idempotent or guarded, never deleting.

Vocabulary: an annotation is *current* until superseded (edits and undos supersede, never
delete); the *undo stack* is an analyst's last UNDO_DEPTH actions (QueueAction rows) per project.
"""

from labeling.services.annotations.edit import annotation_edit
from labeling.services.annotations.review import (
    ReviewDecision,
    Verdict,
    review_submit,
    review_undo_group,
)
from labeling.services.annotations.skip import annotation_skip
from labeling.services.annotations.submit import (
    ERR_EDIT_NOT_CURRENT,
    ERR_EDIT_NOT_RECENT,
    ERR_EDIT_NOT_YOURS,
    ERR_LABEL_NOT_IN_PROJECT,
    ERR_NOTHING_GIVEN,
    ERR_SKIP_DONE,
    ERR_SUBMISSION_REUSED,
    UNDO_DEPTH,
    annotation_submit,
)
from labeling.services.annotations.undo import (
    ERR_NOTHING_TO_UNDO,
    ERR_UNDO_NOT_TOP,
    UndoResult,
    annotation_undo,
)

__all__ = [
    "ERR_EDIT_NOT_CURRENT",
    "ERR_EDIT_NOT_RECENT",
    "ERR_EDIT_NOT_YOURS",
    "ERR_LABEL_NOT_IN_PROJECT",
    "ERR_NOTHING_GIVEN",
    "ERR_NOTHING_TO_UNDO",
    "ERR_SKIP_DONE",
    "ERR_SUBMISSION_REUSED",
    "ERR_UNDO_NOT_TOP",
    "UNDO_DEPTH",
    "ReviewDecision",
    "UndoResult",
    "Verdict",
    "annotation_edit",
    "annotation_skip",
    "annotation_submit",
    "annotation_undo",
    "review_submit",
    "review_undo_group",
]
