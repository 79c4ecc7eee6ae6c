"""The runtime dependency closure is permissively licensed; a GPL package would fail the check."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from tests.licences import is_allowed, runtime_closure, verdicts

ROOT = Path(__file__).resolve().parent.parent


def _runtime_requirements() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_runtime_closure_is_permissive() -> None:
    results = verdicts(runtime_closure(_runtime_requirements()))
    names = {v.name.lower() for v in results}
    assert {
        "django",
        "celery",
        "torch",
        "psycopg",
        "scikit-learn",
        "onnxruntime",
        "model2vec",
    } <= names
    assert "cleanlab" not in names, "cleanlab (AGPL) must stay a test-only dependency"
    bad = [f"{v.name} {v.version}: {v.licence}" for v in results if not v.allowed]
    assert not bad, bad


def _plant(tmp_path: Path, name: str, **fields: str) -> metadata.Distribution:
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in fields.items()]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return metadata.PathDistribution(info)


def test_planted_gpl_package_fails(tmp_path: Path) -> None:
    gpl = _plant(tmp_path, "evil-gpl", License_Expression="GPL-3.0-or-later")
    planted = {"evil-gpl": gpl}

    def lookup(name: str) -> metadata.Distribution:
        return planted.get(name) or metadata.distribution(name)

    results = verdicts(runtime_closure(["evil-gpl", "django"], lookup=lookup))
    assert [v.name for v in results if not v.allowed] == ["evil-gpl"]


def test_licence_rules() -> None:
    assert is_allowed("MIT")
    assert is_allowed("LGPL-3.0-only")
    assert is_allowed("MPL-2.0 AND MIT")
    assert is_allowed("Artistic License OR GNU General Public License (GPL)")
    assert not is_allowed("GPL-3.0-or-later")
    assert not is_allowed("AGPL-3.0")
    assert not is_allowed("GNU Affero General Public License v3")
    assert not is_allowed("MIT AND GPL-2.0")
    assert not is_allowed("UNKNOWN")
