"""Labelling a case outside queue order (reviewers, admins): what the case page showed them.

The write itself is `annotation_submit(item_or_case=case, source="review")`; this module only
describes what the case page shows, so the annotation records it like a queue answer does,
including the hash of the text the page rendered (a hidden field of its form).
"""

from __future__ import annotations

from typing import Any

from labeling.models import Case


def case_review_shown(*, case: Case) -> dict[str, Any]:
    """The `shown` record of a case-page label: given label, champion's suggestion, not blind."""
    from labeling.hooks import model_side

    facts = model_side().case_facts(case=case).champion
    return {
        "page": "case",
        "suggestion_id": facts.suggestion_id if facts else None,
        "suggestion_p": facts.suggestion_p if facts else None,
        "model_version_id": facts.model_version_id if facts else None,
        "given_label_id": case.given_label_id,
        "blind": False,
        "reason": "",
    }


def case_review_hash(*, posted: str | None, case: Case) -> str:
    """The hash of the text the case page rendered: the form's hidden field, else the current one.

    A form from before the field existed (or without it) labels the current text.
    """
    return posted or case.content_hash
