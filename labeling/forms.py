"""Forms of the labeling app: they parse and check input; services do the work."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.core.files.uploadedfile import UploadedFile

from labeling.services.imports import Columns
from labeling.services.imports.readers import READERS
from labeling.services.imports.report import ERR_UNKNOWN_FORMAT


class CaseImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSONL or Parquet; UTF-8.")
    id_column = forms.CharField(initial="id", max_length=100)
    text_column = forms.CharField(initial="text", max_length=100)
    label_column = forms.CharField(initial="label", max_length=100)
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
        return Columns(id=data["id_column"], text=data["text_column"], label=data["label_column"])


MAX_COMMENT = 5000


class QueueAnswerForm(forms.Form):
    """A label (or only flags) for the rendered card named by its signed ticket."""

    ticket = forms.CharField(max_length=4000)
    label = forms.IntegerField(required=False)
    noise_flag = forms.BooleanField(required=False)
    ambiguous = forms.BooleanField(required=False)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True)
    duration_ms = forms.IntegerField(required=False, min_value=0)


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
