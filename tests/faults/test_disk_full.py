"""The data directory fills up while a retrain writes its model: the champion stays, the job
fails saying so, and no partial model file is left.

The data directory is a small tmpfs mounted for the test (`mount -t tmpfs -o size=...`): a real
filesystem that runs out of space and answers ENOSPC, as a full shared volume does. (Chosen
over a loop-mounted image, which needs a loop device, and RLIMIT_FSIZE, which fails with EFBIG
rather than ENOSPC; mounting needs root, which the CI machine is: without it this test fails,
and under CI=true a skip would fail the run too.) The worker trains the champion with room to
spare; in the next retrain, while the fit is held at the `train` fault point, the test fills the
filesystem, so the first write after the fit, the model file, finds no space.
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from active_learning.models import ModelStatus, ModelVersion
from active_learning.services.retrain import retrain_due_check
from labeling.models import Project
from tests.faults.conftest import wait_for
from workbench.core.models import Job, JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SIZE = "48m"  # room for the embedding matrix and a few model files, and little more


@pytest.fixture
def small_volume(tmp_path: Path):
    mount = tmp_path / "data"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"cannot mount a tmpfs (needs root): {result.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(volume: Path) -> None:
    """Write zeros into `volume` until the filesystem says it is full."""
    block = b"\0" * (1 << 20)
    with open(volume / "filler", "wb", buffering=0) as out:
        while True:
            try:
                out.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                block = block[: len(block) // 2]
                if len(block) < 512:
                    return


def _finished(job_id: int) -> Job | None:
    job = Job.objects.get(pk=job_id)
    done = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
    return job if job.status in done else None


def test_disk_full_during_model_write_keeps_champion_and_fails_job_clearly(
    generated, worker, small_volume
) -> None:
    project = generated(given_label_weight=1.0, retrain_after_n=50)
    data = {"WORKBENCH_DATA_DIR": str(small_volume)}
    with worker("roomy", **data):
        (first,) = retrain_due_check()["started"]
        job = wait_for(lambda: _finished(first), timeout=120, what="the first retrain")
        assert job.status == JobStatus.SUCCEEDED, job.error
    champion = ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION)
    models = Path(champion.artifact_path).parent
    champion_bytes = Path(champion.artifact_path).read_bytes()

    Project.objects.filter(pk=project.pk).update(labels_since_training=50)
    (second,) = retrain_due_check()["started"]
    with worker("cramped", WORKBENCH_FAULTS="train=6", **data):
        wait_for(
            ModelVersion.objects.filter(project=project, status=ModelStatus.TRAINING).exists,
            timeout=90,
            what="the second retrain to reach its fit",
        )
        _fill(small_volume)
        job = wait_for(lambda: _finished(second), timeout=90, what="the second retrain to end")

    target = models / "v2.skops"
    assert job.status == JobStatus.FAILED
    first_line = job.error.splitlines()[0]
    assert "no space left on device" in first_line and str(target) in first_line, first_line
    assert "champion is unchanged" in first_line
    # The champion is kept, its file intact; the challenger failed and left no file behind.
    assert ModelVersion.objects.get(project=project, status=ModelStatus.CHAMPION) == champion
    assert Path(champion.artifact_path).read_bytes() == champion_bytes
    challenger = ModelVersion.objects.get(project=project, number=2)
    assert challenger.status == ModelStatus.FAILED and str(target) in challenger.error
    left = sorted(p.name for p in models.iterdir())
    assert not [n for n in left if n.startswith(("v2.", ".v2."))], left
    assert not [n for n in left if n.endswith(".tmp")], left
