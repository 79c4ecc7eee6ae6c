"""Web processes and imports stay light: queueing a retrain never loads the ML stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODE = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "workbench.settings"
import django
django.setup()
import labeling.services.imports, labeling.services.annotations, labeling.services.queue
import labeling.views, workbench.urls
from active_learning.services.retrain_requests import retrain_start
print(sorted(m for m in ("sklearn", "torch", "skops", "sentence_transformers") if m in sys.modules))
"""


def test_labeling_and_views_do_not_load_the_ml_stack() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
