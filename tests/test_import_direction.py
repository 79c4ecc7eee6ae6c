"""Dependencies run one way: active_learning -> labeling -> workbench.core (DESIGN)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package (as a folder under ROOT) -> top-level modules it may never import
FORBIDDEN = {
    "labeling": ("active_learning",),
    "workbench/core": ("active_learning", "labeling"),
}


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue  # history: old migrations name the models they were written against
        for module in sorted(imported_modules(path.read_text())):
            if module.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(ROOT)} imports {module}")
    return out


def test_labeling_never_imports_active_learning():
    """Labeling learns model facts from its own rows and calls the model side through hooks."""
    assert violations("labeling", FORBIDDEN["labeling"]) == []


def test_core_imports_neither_app():
    assert violations("workbench/core", FORBIDDEN["workbench/core"]) == []


def test_the_check_catches_a_forbidden_import_anywhere(tmp_path):
    """A function-level import, the way cycles used to be dodged, is caught too."""
    package = tmp_path / "labeling" / "services"
    package.mkdir(parents=True)
    (package / "bad.py").write_text(
        "def f():\n    from active_learning.models import Prediction\n    return Prediction\n"
    )
    (package / "fine.py").write_text("from workbench.core import sql\n")
    globals()["ROOT"], saved = tmp_path, ROOT
    try:
        found = violations("labeling", ("active_learning",))
    finally:
        globals()["ROOT"] = saved
    assert found == [
        "labeling/services/bad.py imports active_learning.models",
        "labeling/services/bad.py imports active_learning.models.Prediction",
    ]
