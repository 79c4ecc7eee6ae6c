"""The minute tick: the site's housekeeping, across both apps and the core.

Lives in `workbench/` (outside `workbench.core`), the one place that may import both apps:
release expired queue claims, resend import jobs a lost message left queued, and run the
pipeline's due-check (reap jobs whose heartbeat stopped, re-request the retrains they were
running, start due retrains, resend lost ones); rerun embedding jobs the reaper failed (they
resume) and resend lost ones; then rerun the exports the reaper failed, resend
lost ones, delete expired export files, and resend dashboard snapshot requests no worker
answered. Its heartbeat tells the status page that beat and a worker both run.
"""

from __future__ import annotations

from typing import Any


def minute_tick() -> dict[str, Any]:
    from active_learning.services.dashboard import dashboard_snapshots_resend
    from active_learning.services.embedding_jobs import embedding_jobs_recover
    from active_learning.services.retrain import retrain_due_check
    from labeling.services.exports.jobs import export_files_expire, export_jobs_recover
    from labeling.services.imports.jobs import import_jobs_resend_stale
    from labeling.services.queue import queue_release_expired
    from workbench.core.heartbeats import TICK, heartbeat_write

    heartbeat_write(name=TICK)
    return {
        **retrain_due_check(),
        **embedding_jobs_recover(),
        "leases_released": queue_release_expired(),
        "imports_resent": import_jobs_resend_stale(),
        **export_jobs_recover(),
        "exports_expired": export_files_expire(),
        "dashboard_snapshots_resent": dashboard_snapshots_resend(),
    }
