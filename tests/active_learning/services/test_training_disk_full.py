"""A full disk while a version's files are written fails that version with a message naming the
file, removes its files and leaves other versions' alone (tests/faults/test_disk_full.py does it
on a real full filesystem through a worker)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from active_learning.models import ModelStatus, ModelVersion
from active_learning.services.training import ERR_DISK_FULL, _disk_full_fails
from workbench.errors import ApplicationError


@pytest.mark.django_db
def test_a_full_disk_fails_the_version_and_removes_its_files(project, tmp_path: Path) -> None:
    version = ModelVersion.objects.create(project=project, number=2)
    kept = [tmp_path / "v1.skops", tmp_path / "v1.snapshot.npy", tmp_path / "v20.skops"]
    written = [tmp_path / "v2.snapshot.npy", tmp_path / "v2.training.npz"]
    for path in kept + written:
        path.write_bytes(b"x")
    target = tmp_path / "v2.skops"

    with pytest.raises(ApplicationError) as raised, _disk_full_fails(version, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    message = ERR_DISK_FULL.format(path=target, number=2)
    assert raised.value.message == message and str(target) in message
    assert message.startswith("no space left on device while writing")
    version.refresh_from_db()
    assert version.status == ModelStatus.FAILED and version.error == message
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


@pytest.mark.django_db
def test_other_write_errors_pass_through(project, tmp_path: Path) -> None:
    version = ModelVersion.objects.create(project=project, number=1)
    with pytest.raises(PermissionError), _disk_full_fails(version, tmp_path / "v1.skops"):
        raise PermissionError(errno.EACCES, "Permission denied")
    version.refresh_from_db()
    assert version.status == ModelStatus.TRAINING
