"""Embeddings are stored once per text and mirrored in a matrix file any worker can rebuild."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from active_learning.models import Embedding
from active_learning.services.embeddings import (
    Matrix,
    embed_hashes,
    hashes_missing,
    matrix_dir,
    matrix_load,
    matrix_sync,
    model_name_current,
)
from tests.factories import CaseFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.WORKBENCH_DATA_DIR = tmp_path
    return tmp_path


def test_each_distinct_text_is_embedded_once(data_dir) -> None:
    project = ProjectFactory()
    CaseFactory(project=project, text="Online casino with live roulette.")
    CaseFactory(project=project, text="Online casino with live roulette.")
    CaseFactory(project=project, text="Bakery selling sourdough bread.")
    model = model_name_current()
    missing = hashes_missing(project=project, model_name=model)
    assert len(missing) == 2
    assert embed_hashes(project=project, hashes=missing) == 2
    assert Embedding.objects.filter(model_name=model).count() == 2
    assert hashes_missing(project=project, model_name=model) == []
    row = Embedding.objects.first()
    vector = np.frombuffer(bytes(row.vector), dtype="<f4")
    assert row.dim == vector.shape[0] == 384
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def _store(n: int, start: int = 0, dim: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(start)
    out = {}
    for i in range(start, start + n):
        v = rng.normal(size=dim).astype(np.float32)
        out[f"{i:064x}"] = v / np.linalg.norm(v)
    Embedding.objects.bulk_create(
        Embedding(model_name="m", content_hash=h, dim=dim, vector=v.astype("<f4").tobytes())
        for h, v in out.items()
    )
    return out


def test_matrix_matches_database_and_grows_incrementally(data_dir) -> None:
    first = _store(5)
    matrix = matrix_load(model_name="m")
    assert matrix.vectors.shape == (5, 4)
    for h, v in first.items():
        np.testing.assert_array_equal(matrix.vectors[matrix.index[h]], v)
    second = _store(3, start=5)
    manifest = matrix_sync(model_name="m")
    assert manifest["rows"] == 8
    matrix = matrix_load(model_name="m")
    for h, v in {**first, **second}.items():
        np.testing.assert_array_equal(matrix.vectors[matrix.index[h]], v)
    assert list(matrix.rows_for([next(iter(second)), "f" * 64])) == [5, -1]


def test_deleted_matrix_file_is_rebuilt_from_the_database(data_dir) -> None:
    stored = _store(6)
    matrix_load(model_name="m")
    (matrix_dir("m") / "vectors.f32").unlink()
    matrix = matrix_load(model_name="m")
    assert matrix.vectors.shape == (6, 4)
    for h, v in stored.items():
        np.testing.assert_array_equal(matrix.vectors[matrix.index[h]], v)


def test_torn_append_past_the_manifest_is_ignored(data_dir) -> None:
    stored = _store(4)
    matrix_load(model_name="m")
    with (matrix_dir("m") / "vectors.f32").open("ab") as out:
        out.write(b"garbage!" * 3)  # a crash after writing bytes but before the manifest
    more = _store(2, start=4)
    matrix = matrix_load(model_name="m")
    assert matrix.vectors.shape == (6, 4)
    for h, v in {**stored, **more}.items():
        np.testing.assert_array_equal(matrix.vectors[matrix.index[h]], v)


def test_a_row_committed_late_with_a_lower_id_still_reaches_the_matrix(data_dir) -> None:
    """Another worker's slower transaction can commit an id below the last sync's max."""

    def row(pk: int) -> Embedding:
        v = np.full(4, pk, dtype="<f4")
        return Embedding(
            id=pk, model_name="m", content_hash=f"{pk:064x}", dim=4, vector=v.tobytes()
        )

    Embedding.objects.bulk_create([row(1), row(2), row(4), row(5)])
    assert matrix_sync(model_name="m")["max_id"] == 5
    Embedding.objects.bulk_create([row(3)])  # committed after the sync passed id 5
    manifest = matrix_sync(model_name="m")
    assert manifest["rows"] == 5
    matrix = matrix_load(model_name="m")
    np.testing.assert_array_equal(matrix.vectors[matrix.index[f"{3:064x}"]], np.full(4, 3))


def test_matrix_rows_read_what_the_matrix_holds(data_dir) -> None:
    """`Matrix.rows` reads the rows of the given row numbers, in their order, on indexing."""
    stored = _store(6)
    matrix = matrix_load(model_name="m")
    hashes = list(stored)[::-2]
    rows = matrix.rows(matrix.rows_for(hashes))
    expected = np.stack([stored[h] for h in hashes])
    assert rows.shape == (3, 4) and len(rows) == 3
    np.testing.assert_array_equal(rows[np.arange(3)], expected)
    np.testing.assert_array_equal(rows[np.array([2, 0])], expected[[2, 0]])
    np.testing.assert_array_equal(rows[1:], expected[1:])
    np.testing.assert_array_equal(np.asarray(rows), expected)
    assert rows[np.arange(3)].dtype == np.float32


def _rss_file_kb() -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("RssFile:"))
    return int(line.split()[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_reading_through_matrix_rows_leaves_the_files_pages_unmapped(tmp_path) -> None:
    """Every row of a 40 MB matrix read in slices through `Matrix.rows` leaves (almost) none of
    the file resident in this process, where reading it through the map keeps all of it."""
    path = tmp_path / "vectors.f32"
    n, dim = 40_000, 256
    np.random.default_rng(0).random((n, dim), dtype=np.float32).tofile(path)

    def mapped() -> Matrix:
        with path.open("rb") as fh:
            mapping = mmap.mmap(fh.fileno(), n * dim * 4, access=mmap.ACCESS_READ)
        return Matrix(np.frombuffer(mapping, dtype="<f4").reshape(n, dim), {}, mapping)

    rows = mapped().rows(np.arange(n)[::-1])
    before = _rss_file_kb()
    total = sum(float(rows[part].sum()) for part in np.array_split(np.arange(n), 8))
    assert _rss_file_kb() - before < 8 * 1024
    direct = mapped()
    before = _rss_file_kb()
    assert float(np.asarray(direct.vectors[np.arange(n)]).sum()) == pytest.approx(total)
    assert _rss_file_kb() - before > 30 * 1024
