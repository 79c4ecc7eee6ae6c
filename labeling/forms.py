"""Forms of the labeling app: they parse and check input; services do the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from labeling.selectors_review import EXCLUDE_REASONS
from labeling.services.annotations import Verdict
from labeling.services.annotations.review import ERR_NEED_REASON
from labeling.services.imports import Columns
from labeling.services.imports.readers import READERS
from labeling.services.imports.report import ERR_UNKNOWN_FORMAT


class CaseImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSONL or Parquet; UTF-8.")
    id_column = forms.CharField(initial="id", max_length=100)
    text_column = forms.CharField(initial="text", max_length=100)
    label_column = forms.CharField(initial="label", max_length=100)
    label_source_column = forms.CharField(
        initial="label_source",
        max_length=100,
        required=False,
        help_text="Optional: the legacy rule, team or vendor that gave each label (else import).",
    )
    update = forms.BooleanField(
        required=False, help_text="Replace cases whose id already exists (old labels go stale)."
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        suffix = Path(upload.name or "").suffix.lower()
        if suffix not in READERS:
            raise forms.ValidationError(ERR_UNKNOWN_FORMAT.format(suffix=suffix or "(none)"))
        return upload

    def columns(self) -> Columns:
        data = self.cleaned_data
        return Columns(
            id=data["id_column"],
            text=data["text_column"],
            label=data["label_column"],
            label_source=data.get("label_source_column") or Columns().label_source,
        )


MAX_COMMENT = 5000


MAX_EXCLUDE_DETAIL = 150  # with the chosen reason, within the 200 an exclusion keeps
ERR_NEED_DETAIL = "Say in a few words why the case leaves the dataset."


class QueueAnswerForm(forms.Form):
    """An answer to the rendered card named by its signed ticket: a label (or only flags) on the
    labelling card; a verdict on the review card.

    Review card buttons name their verdict, except the class buttons (shared with the labelling
    card), whose label alone means "relabel"; the ambiguous box alone means "ambiguous". An
    exclusion's reason is one of EXCLUDE_REASONS plus optional words ("other" needs them),
    cleaned into one `exclude_reason`.
    """

    ticket = forms.CharField(max_length=4000)
    label = forms.IntegerField(required=False)
    noise_flag = forms.BooleanField(required=False)
    ambiguous = forms.BooleanField(required=False)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True)
    duration_ms = forms.IntegerField(required=False, min_value=0)
    verdict = forms.ChoiceField(required=False, choices=[("", "")] + [(v, v) for v in Verdict])
    exclude_reason = forms.ChoiceField(required=False, choices=[("", ""), *EXCLUDE_REASONS])
    exclude_detail = forms.CharField(required=False, max_length=MAX_EXCLUDE_DETAIL, strip=True)
    apply_group = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        verdict = data.get("verdict") or ""
        if not verdict and data.get("label") is not None:
            verdict = Verdict.RELABEL
        elif not verdict and data.get("ambiguous"):
            verdict = Verdict.AMBIGUOUS
        data["verdict"] = str(verdict)
        reason, detail = data.get("exclude_reason") or "", data.get("exclude_detail") or ""
        if verdict == Verdict.EXCLUDE:
            if not reason:
                self.add_error("exclude_reason", ERR_NEED_REASON)
            elif reason == "other" and not detail:
                self.add_error("exclude_detail", ERR_NEED_DETAIL)
        data["exclude_reason"] = f"{reason}: {detail}" if reason and detail else reason
        return data

    def error_message(self) -> str | None:
        """The first error in words for the card, None when only the ticket is missing or bad
        (the page then reloads the card as stale)."""
        if "ticket" in self.errors:
            return None
        for errors in self.errors.values():
            return str(errors[0])
        return None


class QueueSkipForm(forms.Form):
    ticket = forms.CharField(max_length=4000)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True)


class QueueUndoForm(forms.Form):
    action_id = forms.IntegerField(required=False)


class QueuePingForm(forms.Form):
    item = forms.IntegerField(required=False)


class CaseSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=500, strip=True, label="Search")


class CaseReviewForm(forms.Form):
    """A reviewer's label of a case outside queue order."""

    submission_id = forms.UUIDField()
    label = forms.IntegerField(required=False)
    noise_flag = forms.BooleanField(required=False)
    ambiguous = forms.BooleanField(required=False)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True)
    # The hash of the text the page rendered (hidden): a label of an older text is stored stale.
    content_hash = forms.RegexField(regex=r"^[0-9a-f]{64}$", required=False)
