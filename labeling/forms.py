"""Forms of the labeling app: they parse and check input; services do the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from labeling.selectors_review import EXCLUDE_REASONS
from labeling.services.annotations import Verdict
from labeling.services.annotations.review import ERR_NEED_REASON
from labeling.services.exports import FORMATS, ExportOptions
from labeling.services.exports.rows import CASE_CHOICES, SPLIT_CHOICES
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


CASE_LABELS = {
    "all": "All cases",
    "labelled": "Labelled by people (final label not the given one's source)",
    "changed": "Final label changed from the given label",
    "excluded": "Only the excluded cases",
}
SPLIT_LABELS = {"all": "Both (the split column marks each)", "pool": "Pool", "eval": "Evaluation"}


class CaseExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f.upper()) for f in FORMATS], initial="csv")
    cases = forms.ChoiceField(choices=[(c, CASE_LABELS[c]) for c in CASE_CHOICES], initial="all")
    split = forms.ChoiceField(choices=[(s, SPLIT_LABELS[s]) for s in SPLIT_CHOICES], initial="all")
    include_excluded = forms.BooleanField(
        required=False, help_text="Keep the cases a reviewer excluded (left out by default)."
    )
    provenance = forms.BooleanField(
        required=False,
        help_text="Every annotation: nested in JSONL and Parquet, a second file in CSV.",
    )

    def options(self) -> ExportOptions:
        data = self.cleaned_data
        return ExportOptions(
            cases=data["cases"],
            split=data["split"],
            include_excluded=data["include_excluded"],
            provenance=data["provenance"],
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


ERR_UNKNOWN_CLASS = "No class named “%(value)s” in this project."
ERR_UNKNOWN_ANALYST = "No member of this project is called “%(value)s”."
ERR_SCORE_RANGE = "The lowest issue score is above the highest."
ERR_DATE_RANGE = "The first day comes after the last."
ERR_BAD_CURSOR = "This page link is broken or out of date: start again from the first page."
ME = "me"  # `labelled_by` value: the person searching


class CaseSearchForm(forms.Form):
    """The case search's words, filters, sort and page (a GET form: every search is a URL).

    Classes and analysts are named (class names, usernames), so a bookmarked search reads well;
    `filters()` turns them into the ids `SearchFilters` holds. Every bad value is a field error
    in words; nothing here can raise.
    """

    q = forms.CharField(
        required=False,
        max_length=500,
        strip=True,
        label="Id, words of the name or description, or metadata key=value",
        widget=forms.TextInput(attrs={"type": "search", "dir": "auto", "autofocus": True}),
    )
    given = forms.ChoiceField(required=False, label="Given label")
    resolved = forms.ChoiceField(required=False, label="Resolved label")
    source = forms.ChoiceField(required=False, label="Resolved by")
    doubtful = forms.BooleanField(required=False, label="Doubtful labels only")
    issue = forms.BooleanField(required=False, label="Flagged as a label issue")
    score_min = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, label="Issue score from"
    )
    score_max = forms.FloatField(required=False, min_value=0.0, max_value=1.0, label="to")
    split = forms.ChoiceField(required=False, label="Split")
    labelled_by = forms.ChoiceField(required=False, label="Labelled by")
    changed_from = forms.DateField(
        required=False, label="Changed from", widget=forms.DateInput(attrs={"type": "date"})
    )
    changed_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(required=False, label="Sort by")
    after = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)

    SOURCE_WORDS = {
        "given": "nobody yet (given label)",
        "annotation": "analysts",
        "consensus": "consensus",
        "review": "a reviewer",
        "adjudicated": "an adjudicator",
    }

    def __init__(
        self,
        data: Any = None,
        *,
        classes: list[Any],
        analysts: list[Any],
        user: Any,
    ) -> None:
        super().__init__(data)
        from labeling.models import ResolutionSource, Split
        from labeling.selectors_search import SearchSort

        self._classes = {c.name: c for c in classes}
        self._analysts = {a.get_username(): a for a in analysts}
        self._user = user
        named = [("", "any")] + [(c.name, str(c)) for c in classes]
        people = [(name, name) for name in self._analysts if name != ME]
        sources = [(v, self.SOURCE_WORDS.get(v, v)) for v in ResolutionSource.values]
        offered = {
            "given": named,
            "resolved": named,
            "source": [("", "anyone"), *sources],
            "split": [("", "any"), *Split.choices],
            "labelled_by": [("", "anyone"), (ME, "me"), *people],
            "sort": list(SearchSort.choices),
        }
        for name, choices in offered.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = choices
        for name in ("given", "resolved"):
            self.fields[name].error_messages["invalid_choice"] = ERR_UNKNOWN_CLASS
        self.fields["labelled_by"].error_messages["invalid_choice"] = ERR_UNKNOWN_ANALYST

    def clean(self) -> dict[str, Any]:
        from labeling.selectors_search import BadCursor, SearchCursor, SearchSort

        data = super().clean() or {}
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", ERR_SCORE_RANGE)
        first, last = data.get("changed_from"), data.get("changed_to")
        if first is not None and last is not None and first > last:
            self.add_error("changed_to", ERR_DATE_RANGE)
        sort = data.get("sort") or SearchSort.CHANGED
        data["sort"] = sort
        data["cursor"] = None
        if data.get("after"):
            try:
                cursor = SearchCursor.loads(data["after"])
            except BadCursor:
                cursor = None
            if cursor is None or cursor.sort != sort:
                self.add_error("after", ERR_BAD_CURSOR)
            data["cursor"] = cursor
        return data

    def filters(self) -> Any:
        """The valid form's `SearchFilters` (call after `is_valid()`)."""
        from datetime import datetime, time, timedelta

        from django.utils import timezone

        from labeling.selectors_search import SearchFilters

        data = self.cleaned_data

        def class_id(name: str) -> int | None:
            return self._classes[name].pk if name else None

        def day_start(day: Any) -> datetime:
            return timezone.make_aware(datetime.combine(day, time.min))

        who = data.get("labelled_by") or ""
        person = self._user if who == ME else self._analysts.get(who)
        last = data.get("changed_to")
        return SearchFilters(
            query=data.get("q") or "",
            given_label_id=class_id(data.get("given") or ""),
            resolved_label_id=class_id(data.get("resolved") or ""),
            source=data.get("source") or "",
            doubtful=bool(data.get("doubtful")),
            issue_flagged=bool(data.get("issue")),
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            split=data.get("split") or "",
            labelled_by_id=person.pk if person is not None else None,
            changed_from=day_start(data["changed_from"]) if data.get("changed_from") else None,
            changed_before=day_start(last + timedelta(days=1)) if last else None,
            sort=data["sort"],
        )

    # Which part of the form an error is about, in the page's words.
    ERROR_PREFIX = {
        "q": "Search",
        "given": "Given label",
        "resolved": "Resolved label",
        "source": "Resolved by",
        "score_min": "Issue score",
        "score_max": "Issue score",
        "split": "Split",
        "labelled_by": "Labelled by",
        "changed_from": "Changed",
        "changed_to": "Changed",
        "sort": "Sort by",
    }

    def error_messages(self) -> list[str]:
        """Every error in words, each naming the part of the form it is about."""
        out: list[str] = []
        for name, errors in self.errors.items():
            prefix = self.ERROR_PREFIX.get(name)
            out.extend(f"{prefix}: {e}" if prefix else str(e) for e in errors)
        return out


class CaseReviewForm(forms.Form):
    """A reviewer's label of a case outside queue order."""

    submission_id = forms.UUIDField()
    label = forms.IntegerField(required=False)
    noise_flag = forms.BooleanField(required=False)
    ambiguous = forms.BooleanField(required=False)
    comment = forms.CharField(required=False, max_length=MAX_COMMENT, strip=True)
    # The hash of the text the page rendered (hidden): a label of an older text is stored stale.
    content_hash = forms.RegexField(regex=r"^[0-9a-f]{64}$", required=False)
