"""Pages of the labeling app, one module per area. Thin: check the role, call, render."""

from labeling.views.cases import case_detail, case_label, case_search_page
from labeling.views.exports import case_export, case_export_download, case_export_job
from labeling.views.imports import case_import, case_import_job
from labeling.views.projects import project_list, project_retrain, retrain_progress
from labeling.views.quality import quality
from labeling.views.queue import queue, queue_ping, queue_skip, queue_submit, queue_undo

__all__ = [
    "case_detail",
    "case_export",
    "case_export_download",
    "case_export_job",
    "case_import",
    "case_import_job",
    "case_label",
    "case_search_page",
    "project_list",
    "project_retrain",
    "quality",
    "queue",
    "queue_ping",
    "queue_skip",
    "queue_submit",
    "queue_undo",
    "retrain_progress",
]
