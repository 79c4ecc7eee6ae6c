"""Generated merchant cases with known label noise, written through the bulk import.

The synthetic generator's noisy `given_label` becomes the case's given label, its `true_label`
(with `noise_kind`) a `SyntheticTruth`; name, website, MCC, country, volumes go to metadata and
the description is the text. Each given label gets one of a few plausible sources (a legacy rule,
a vendor, a team), drawn from the case's id. The same seed gives the same cases.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from django.db import transaction

from labeling.models import Case, LabelClass, Project, SyntheticTruth
from labeling.services.imports import ImportReport, case_import_reader
from labeling.services.imports.readers import RecordsReader
from labeling.services.imports.validate import Progress
from labeling.synthetic import iter_records, label_class_specs
from workbench.core.audit import audit_record
from workbench.errors import ApplicationError

DEMO_CASES = 5000
DEMO_NOISE = 0.2
DEMO_SEED = 7
TRUTH_BATCH = 900  # ids per query: below SQLite's parameter limit
# Who gave the demo's given labels. Drawn from a checksum of the id, not the generator's random
# stream, so the same ids get the same sources and the labels stay what the seed makes them.
DEMO_LABEL_SOURCES = ("mcc_rules_v2", "vendor_feed", "ops_team")

ERR_TAXONOMY = (
    "The project's classes do not match the synthetic taxonomy: missing {missing}. Use a project "
    "without classes (they are then created) or with all of the taxonomy's classes."
)
ERR_ARGUMENTS = "Cannot generate synthetic data: {problem}"


def synthetic_classes_ensure(*, project: Project, actor: Any = None) -> list[str]:
    """Create the taxonomy's classes in a project without classes; check them otherwise.

    Returns the names created. Raises ApplicationError (ERR_TAXONOMY) when classes are missing.
    """
    names = set(project.label_classes.values_list("name", flat=True))
    specs = label_class_specs()
    if names:
        missing = [spec["name"] for spec in specs if spec["name"] not in names]
        if missing:
            raise ApplicationError(ERR_TAXONOMY.format(missing=", ".join(missing)))
        return []
    LabelClass.objects.bulk_create(
        LabelClass(
            project=project,
            name=spec["name"],
            display_name=spec["display_name"],
            tier=spec["tier"],
            description=spec["description"],
            guideline=spec["guideline"],
            shortcut_key=spec["shortcut_key"],
            order=spec["order"],
        )
        for spec in specs
    )
    created = [spec["name"] for spec in specs]
    audit_record(
        actor=actor,
        action="label_class.create",
        obj=project,
        project=project,
        after={"classes": created, "source": "synthetic taxonomy"},
    )
    return created


def _truths_write(*, project: Project, truths: dict[str, tuple[str, str]]) -> None:
    label_ids = dict(project.label_classes.values_list("name", "id"))
    ids = list(truths)
    for start in range(0, len(ids), TRUTH_BATCH):
        chunk = ids[start : start + TRUTH_BATCH]
        cases = Case.objects.filter(project=project, external_id__in=chunk)
        SyntheticTruth.objects.bulk_create(
            SyntheticTruth(
                case_id=pk,
                true_label_id=label_ids[truths[external_id][0]],
                noise_kind=truths[external_id][1],
            )
            for external_id, pk in cases.values_list("external_id", "pk")
        )


def demo_label_source(external_id: str) -> str:
    """The demo's source of a case's given label: the same id always gets the same one."""
    index = zlib.crc32(external_id.encode("utf-8")) % len(DEMO_LABEL_SOURCES)
    return DEMO_LABEL_SOURCES[index]


def demo_data_generate(
    *,
    project: Project,
    cases: int,
    noise: float = DEMO_NOISE,
    seed: int = DEMO_SEED,
    actor: Any = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Write `cases` generated merchants (ids M0000001...) into `project`, or nothing.

    Returns the import report (not ok, with line-numbered problems, when e.g. the ids exist).
    """
    try:
        iter_records(cases, seed=seed, noise=noise)
    except ValueError as exc:
        raise ApplicationError(ERR_ARGUMENTS.format(problem=exc)) from exc
    truths: dict[str, tuple[str, str]] = {}

    def records() -> Iterator[dict[str, Any]]:
        for record in iter_records(cases, seed=seed, noise=noise):
            truths[record.external_id] = (record.true_label, record.noise_kind)
            yield {
                "id": record.external_id,
                "text": record.text,
                "label": record.given_label,
                "label_source": demo_label_source(record.external_id),
                "metadata": record.metadata(),
            }

    with transaction.atomic():
        created = synthetic_classes_ensure(project=project, actor=actor)
        report = case_import_reader(
            project=project,
            reader=RecordsReader(records, total=cases),
            file_name=f"synthetic(cases={cases}, noise={noise}, seed={seed})",
            actor=actor,
            progress=progress,
            on_written=lambda: _truths_write(project=project, truths=truths),
        )
        if report.ok:
            report.new_classes = created + report.new_classes
        else:
            transaction.set_rollback(True)
    return report


def demo_data_ensure(
    *, project: Project, cases: int = DEMO_CASES, noise: float = DEMO_NOISE, seed: int = DEMO_SEED
) -> ImportReport | None:
    """Load generated cases into a project that has none (idempotent); None when it has some."""
    if Case.objects.filter(project=project).exists():
        return None
    report = demo_data_generate(project=project, cases=cases, noise=noise, seed=seed)
    if not report.ok:
        raise ApplicationError(
            report.summary(), details={"errors": [str(e) for e in report.errors]}
        )
    return report
