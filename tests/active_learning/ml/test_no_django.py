"""Every module in active_learning.ml imports with Django absent (STYLE.md rule 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import importlib, pkgutil, sys

class BlockDjango:
    def find_spec(self, name, path=None, target=None):
        if name == "django" or name.startswith("django."):
            raise ImportError(f"Django is blocked in this test: {name}")
        return None

sys.meta_path.insert(0, BlockDjango())
import active_learning.ml as ml

names = [m.name for m in pkgutil.walk_packages(ml.__path__, prefix="active_learning.ml.")]
for name in names:
    importlib.import_module(name)
assert not any(m == "django" or m.startswith("django.") for m in sys.modules)
print(len(names))
"""


def test_ml_modules_import_without_django():
    """A subprocess whose import hook makes `import django` fail imports every ml module."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 5
