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
