"""Embeddings of case texts: stored once per (model, content hash) in the database, plus a
per-model float32 matrix file under WORKBENCH_DATA_DIR for fast scoring.

A *model name* names the vectors: EMBEDDING_MODEL for the torch backend, with the backend
appended for the others (`backend_model_name`), so vectors of two backends never meet in one
matrix. Code that reads vectors uses `model_name_current()`: EMBEDDING_MODEL, unless a caller
set another for its block with `model_in_use` (a retrain: the project's vectors; scoring: the
scoring version's own).

The database is the source of truth. The matrix file is a cache any worker rebuilds from it when
missing or stale: `vectors.f32` (rows × dim, float32), `hashes.txt` (one content hash per row)
and `manifest.json` (rows, dim, the highest Embedding id included), written last, so a crash
mid-append leaves extra bytes that readers ignore.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import mmap
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from active_learning.ml.embeddings import (
    BACKENDS,
    Encoder,
    artifact_build,
    artifact_path,
    artifact_ready,
    backend_model_name,
    encoder_build,
)
from active_learning.models import Embedding
from active_learning.selectors import LabelSet
from active_learning.services.faults import fault_point
from labeling.models import Case, Project
from workbench.core.leases import lease_acquire, lease_release
from workbench.core.locks import exclusive
from workbench.core.stopping import raise_if_stopping

_BATCH = 2000
_encoders: dict[str, Encoder] = {}
_in_use: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "embedding_model", default=None
)


def model_name_current() -> str:
    """The vectors this block reads and writes (see the module's docstring)."""
    return _in_use.get() or str(settings.EMBEDDING_MODEL)


@contextlib.contextmanager
def model_in_use(model_name: str | None) -> Iterator[str]:
    """Read and write the vectors of `model_name` (None or blank: EMBEDDING_MODEL) in the block."""
    token = _in_use.set(model_name or None)
    try:
        yield model_name_current()
    finally:
        _in_use.reset(token)


def model_name_for(project: Project) -> str:
    """The vectors the project's models train on now."""
    return project.embedding_model or str(settings.EMBEDDING_MODEL)


def model_name_selected(project: Project) -> str:
    """The vectors of the project's chosen backend (the embedding job makes them, then the
    project's models move to them)."""
    return backend_model_name(str(settings.EMBEDDING_MODEL), project.embedding_backend)


def backend_of(model_name: str) -> str:
    for backend in BACKENDS:
        if backend_model_name(str(settings.EMBEDDING_MODEL), backend) == model_name:
            return backend
    return "torch"  # another sentence-transformers model (EMBEDDING_MODEL_PATH)


def _encoders_root() -> Path:
    """The data directory's encoder artefacts of EMBEDDING_MODEL, one folder per backend."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(settings.EMBEDDING_MODEL))
    return Path(settings.WORKBENCH_DATA_DIR) / "encoders" / safe


def encoder_dir(model_name: str) -> Path:
    """Where the exported or distilled encoder of `model_name` lives (made once, on first use)."""
    return artifact_path(_encoders_root(), backend_of(model_name))


def encoder_prepare(
    model_name: str | None = None, *, progress: Callable[[int, int], None] | None = None
) -> None:
    """Export (ONNX int8) or distil (static) the encoder of `model_name` unless it is on disk.

    Offline, from the bundled model; once per data directory, under a lock another worker waits
    on (the build is atomic, so a killed build leaves nothing that looks finished).
    """
    model_name = model_name or model_name_current()
    backend = backend_of(model_name)
    if backend == "torch":
        return
    root = _encoders_root()
    if artifact_ready(backend, artifact_path(root, backend)):
        return
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(f"encoder:{backend}", folder=root):
        artifact_build(  # returns at once when another worker built it meanwhile
            backend,
            artifacts_dir=root,
            model_path=settings.EMBEDDING_MODEL_PATH or None,
            progress=progress,
        )


def encoder_get(model_name: str | None = None) -> Encoder:
    """This process's encoder of `model_name` (default: the current one), built on first use
    (never before a prefork worker forks)."""
    model_name = model_name or model_name_current()
    encoder = _encoders.get(model_name)
    if encoder is None:
        encoder_prepare(model_name)
        encoder = encoder_build(
            backend_of(model_name),
            model_path=settings.EMBEDDING_MODEL_PATH or None,
            artifacts_dir=_encoders_root(),
            model_name=model_name,
            num_threads=settings.WORKER_THREADS,
        )
        _encoders[model_name] = encoder
    return encoder


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


class DatabaseEmbeddingCache:
    """The ml layer's `EmbeddingCache`, backed by `Embedding` rows."""

    def get_many(self, model_name: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), _BATCH):
            rows = Embedding.objects.filter(
                model_name=model_name, content_hash__in=hashes[start : start + _BATCH]
            ).values_list("content_hash", "vector")
            for digest, blob in rows:
                found[digest] = np.frombuffer(bytes(blob), dtype="<f4")
        return found

    def put_many(self, model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
        if not vectors:
            return
        if connection.vendor == "postgresql":
            _put_many_copy(model_name, vectors)
            return
        rows = [
            Embedding(
                model_name=model_name, content_hash=h, dim=int(v.shape[0]), vector=_to_bytes(v)
            )
            for h, v in vectors.items()
        ]
        Embedding.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)


def _put_many_copy(model_name: str, vectors: Mapping[str, np.ndarray]) -> None:
    """`put_many` on PostgreSQL: a binary COPY into a temporary table, then one INSERT that
    skips texts another worker stored meanwhile (COPY alone cannot skip a conflict); about 10x
    faster than `bulk_create` for the static backend's thousands of vectors a second."""
    table = Embedding._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS embedding_incoming "
            "(content_hash varchar(64), dim smallint, vector bytea) ON COMMIT DELETE ROWS"
        )
        sql = "COPY embedding_incoming (content_hash, dim, vector) FROM STDIN (FORMAT BINARY)"
        with cursor.cursor.copy(sql) as copy:
            copy.set_types(["varchar", "int2", "bytea"])
            for digest, vector in vectors.items():
                copy.write_row((digest, int(vector.shape[0]), _to_bytes(vector)))
        cursor.execute(
            f"INSERT INTO {table} (model_name, content_hash, dim, vector, created_at) "
            "SELECT %s, content_hash, dim, vector, %s FROM embedding_incoming "
            "ON CONFLICT (model_name, content_hash) DO NOTHING",
            [model_name, timezone.now()],
        )


def hashes_missing(*, project: Project, model_name: str) -> list[str]:
    """Distinct content hashes of the project's cases with no embedding for `model_name`."""
    have = Embedding.objects.filter(model_name=model_name).values("content_hash")
    return list(
        Case.objects.filter(project=project)
        .exclude(content_hash__in=have)
        .order_by()
        .values_list("content_hash", flat=True)
        .distinct()
    )


def embed_hashes(
    *, project: Project, hashes: Sequence[str], progress: Callable[[int, int], None] | None = None
) -> int:
    """Encode the texts behind `hashes` (one case's text each) and store them; returns the count."""
    if not hashes:
        return 0
    texts: dict[str, str] = {}
    for start in range(0, len(hashes), _BATCH):
        for digest, text in Case.objects.filter(
            project=project, content_hash__in=hashes[start : start + _BATCH]
        ).values_list("content_hash", "text"):
            texts.setdefault(digest, text)
    fault_point("embed")  # crash tests stop the worker here, mid-embedding
    encoder = encoder_get()
    ordered = [h for h in hashes if h in texts]
    encoder.encode([texts[h] for h in ordered], cache=DatabaseEmbeddingCache(), progress=progress)
    return len(ordered)


# --- the matrix file -------------------------------------------------------------------------


@dataclass
class Matrix:
    """A read-only view of a model's matrix file: `vectors[index[h]]` is the vector of hash h.

    `vectors` is a memory map of the file (`mapping`, None for an empty matrix): every page a
    read touches stays resident in this process until `release_pages` (or the map's end).
    """

    vectors: np.ndarray
    index: dict[str, int]
    mapping: mmap.mmap | None = None

    def rows_for(self, hashes: Iterable[str]) -> np.ndarray:
        """Row numbers of `hashes`, -1 where a hash has no vector yet."""
        return np.fromiter(map(self.index.get, hashes, itertools.repeat(-1)), dtype=np.int64)

    def release_pages(self) -> None:
        """Unmap the file's pages from this process (they stay in the page cache, and a later
        read maps them again): a 1M-row matrix read through once is 1.5 GB resident otherwise."""
        if self.mapping is not None:
            self.mapping.madvise(mmap.MADV_DONTNEED)

    def rows(self, rows: np.ndarray) -> MatrixRows:
        """Matrix rows `rows` (row numbers, as `rows_for` gives), read on indexing."""
        return MatrixRows(self, rows)


class MatrixRows:
    """Rows `rows` of a `Matrix`, read on indexing (X[idx], X[a:b], X[i]) as float32 arrays.

    Stands in for `np.asarray(matrix.vectors[rows], dtype=np.float32)` where the rows are read a
    slice or a sample at a time (label-issue detection reads a 1M-row matrix twice, a fifth at a
    time): each read copies its rows and releases the file's pages, so this process never holds
    more than the rows of one read, where the copy and the mapped pages of every row would be
    3 GB at 1M rows of 384 dimensions.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, matrix: Matrix, rows: np.ndarray) -> None:
        self.matrix = matrix
        self.rows = np.asarray(rows, dtype=np.int64)
        self.shape = (int(self.rows.shape[0]), int(matrix.vectors.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        out = np.asarray(self.matrix.vectors[self.rows[key]], dtype=np.float32)
        self.matrix.release_pages()
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """All the rows at once (what `np.asarray` of this gives)."""
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


def embedded_only(labels: LabelSet, *, model_name: str | None = None) -> LabelSet:
    """`labels` without the cases whose text has no vector (of `model_name`, default the current)
    yet: cases imported (or edited) while a retrain runs are embedded and used by the next one;
    this one neither waits nor fails, and never reads another case's vector for them."""
    known = matrix_load(model_name=model_name).rows_for(labels.hashes) >= 0
    return labels if bool(known.all()) else labels.subset(known)


def matrix_dir(model_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name)
    return Path(settings.WORKBENCH_DATA_DIR) / "embeddings" / safe


def _read_manifest(folder: Path) -> dict[str, int] | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return {k: int(v) for k, v in manifest.items()}
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def matrix_sync(*, model_name: str | None = None) -> dict[str, int]:
    """Bring the matrix file up to date with the database, appending only new rows.

    A missing, unreadable or inconsistent file is rebuilt from scratch. Returns the manifest.
    """
    model_name = model_name or model_name_current()
    folder = matrix_dir(model_name)
    folder.mkdir(parents=True, exist_ok=True)
    # A lock that dies with its holder: a worker killed mid-sync never blocks the others.
    with exclusive(f"matrix:{model_name}", folder=folder):
        return _matrix_sync_locked(model_name, folder)


def _matrix_sync_locked(model_name: str, folder: Path) -> dict[str, int]:
    manifest = _read_manifest(folder)
    vectors_path, hashes_path = folder / "vectors.f32", folder / "hashes.txt"
    if manifest is not None and not _consistent(folder, manifest):
        manifest = None
    if manifest is None:
        manifest = {"rows": 0, "dim": 0, "max_id": 0}
        for path in (vectors_path, hashes_path):
            path.unlink(missing_ok=True)
    last = Embedding.objects.filter(model_name=model_name).aggregate(m=Max("id"))["m"] or 0
    if last < manifest["max_id"]:  # the database was reset or restored: start again
        manifest = {"rows": 0, "dim": 0, "max_id": 0}
    late = _late_rows(model_name, hashes_path, manifest)
    if last == manifest["max_id"] and not late:
        return manifest
    new = Embedding.objects.filter(model_name=model_name, id__gt=manifest["max_id"]).order_by("id")
    with (
        vectors_path.open("r+b" if vectors_path.exists() else "wb") as vec_out,
        hashes_path.open("r+" if hashes_path.exists() else "w") as hash_out,
    ):
        # Anything past the manifest is a torn append: overwrite it.
        vec_out.seek(manifest["rows"] * manifest["dim"] * 4)
        vec_out.truncate()
        hash_out.seek(manifest["rows"] * 65)
        hash_out.truncate()
        if late:
            rows = list(Embedding.objects.filter(pk__in=late).values_list("content_hash", "vector"))
            vec_out.write(b"".join(bytes(row[1]) for row in rows))
            hash_out.write("".join(f"{row[0]}\n" for row in rows))
            manifest["rows"] += len(rows)
        for start in range(manifest["max_id"], last, 50_000):
            chunk = list(
                new.filter(id__gt=start, id__lte=start + 50_000).values_list(
                    "id", "content_hash", "dim", "vector"
                )
            )
            if chunk:
                manifest["dim"] = manifest["dim"] or chunk[0][2]
            vec_out.write(b"".join(bytes(row[3]) for row in chunk))
            hash_out.write("".join(f"{row[1]}\n" for row in chunk))
            manifest["rows"] += len(chunk)
        vec_out.flush()
        hash_out.flush()
        os.fsync(vec_out.fileno())
        os.fsync(hash_out.fileno())
    manifest["max_id"] = last
    _write_json_atomic(folder / "manifest.json", manifest)
    return manifest


LATE_WINDOW = 5000


def _late_rows(model_name: str, hashes_path: Path, manifest: dict[str, int]) -> list[int]:
    """Ids at or below the manifest's max_id that the file lacks.

    PostgreSQL hands out ids at insert and rows appear at commit, so a slower transaction of
    another worker can commit a lower id after a sync has moved past it: look back a little.
    """
    if manifest["rows"] == 0 or manifest["max_id"] == 0:
        return []
    recent = Embedding.objects.filter(
        model_name=model_name,
        id__gt=max(0, manifest["max_id"] - LATE_WINDOW),
        id__lte=manifest["max_id"],
    ).values_list("id", "content_hash")
    index = _hash_index(hashes_path, manifest["rows"])
    return [pk for pk, digest in recent if digest not in index]


def _consistent(folder: Path, manifest: dict[str, int]) -> bool:
    try:
        vec_size = (folder / "vectors.f32").stat().st_size
        hash_size = (folder / "hashes.txt").stat().st_size
    except OSError:
        return manifest["rows"] == 0
    return vec_size >= manifest["rows"] * manifest["dim"] * 4 and hash_size >= manifest["rows"] * 65


def matrix_load(*, model_name: str | None = None) -> Matrix:
    """The up-to-date matrix (synced first), memory-mapped read-only."""
    model_name = model_name or model_name_current()
    manifest = matrix_sync(model_name=model_name)
    folder = matrix_dir(model_name)
    rows, dim = manifest["rows"], manifest["dim"]
    if rows == 0:
        return Matrix(np.zeros((0, dim or 1), dtype=np.float32), {})
    with (folder / "vectors.f32").open("rb") as fh:
        mapping = mmap.mmap(fh.fileno(), rows * dim * 4, access=mmap.ACCESS_READ)
    vectors = np.frombuffer(mapping, dtype="<f4", count=rows * dim).reshape(rows, dim)
    return Matrix(vectors, _hash_index(folder / "hashes.txt", rows), mapping)


_HASH_LINE = 65  # 64 hex digits and a newline
# path -> (file identity, rows read, index): the file is append-only between rebuilds, so a
# process reads only the rows appended since its last look (1M hashes take ~1 s to index).
_index_cache: dict[str, tuple[tuple[int, int], int, dict[str, int]]] = {}


def _hash_index(path: Path, rows: int) -> dict[str, int]:
    """hash -> row of the first `rows` lines of `path`, reusing this process's earlier read."""
    with path.open("rb") as fh:
        stat = os.fstat(fh.fileno())
        identity = (stat.st_dev, stat.st_ino)
        cached = _index_cache.get(str(path))
        index: dict[str, int] = {}
        start = 0
        if cached is not None and cached[0] == identity and 0 < cached[1] <= rows:
            # Same file, and its first and last known rows still hold the same hashes.
            known, old = cached[1], cached[2]
            fh.seek(0)
            first = fh.read(_HASH_LINE - 1).decode("ascii")
            fh.seek((known - 1) * _HASH_LINE)
            last = fh.read(_HASH_LINE - 1).decode("ascii")
            if old.get(first) == 0 and old.get(last) == known - 1:
                # Grown: a copy, so a Matrix loaded earlier never sees rows past its own end.
                index, start = (dict(old) if known < rows else old), known
        if start < rows:
            fh.seek(start * _HASH_LINE)
            lines = fh.read((rows - start) * _HASH_LINE).decode("ascii").split("\n")
            index.update(zip(lines[: rows - start], range(start, rows), strict=True))
    _index_cache[str(path)] = (identity, rows, index)
    return index


# --- fan-out ---------------------------------------------------------------------------------


def _chunk_lease(model_name: str, chunk: Sequence[str]) -> str:
    return f"embed:{model_name}:{chunk[0][:16]}:{len(chunk)}"


# The static backend encodes a text ~100x faster: at the same chunk size the per-chunk
# bookkeeping (lease, reads, progress) took most of its time (bench/embedding_job.py).
STATIC_CHUNK_FACTOR = 8


def chunk_texts(model_name: str) -> int:
    """Texts per embedding chunk for `model_name`'s backend (EMBED_CHUNK_TEXTS, more for static)."""
    factor = STATIC_CHUNK_FACTOR if backend_of(model_name) == "static" else 1
    return int(settings.EMBED_CHUNK_TEXTS) * factor


def embed_chunk(*, project: Project, hashes: Sequence[str]) -> int:
    """Embed one chunk unless another worker holds it; returns how many texts this call encoded.

    Idempotent: texts embedded meanwhile (by anyone) are skipped.
    """
    model_name = model_name_current()
    name, holder = _chunk_lease(model_name, hashes), uuid.uuid4().hex
    # Short: a chunk takes seconds, and a dead holder's chunk is retaken when this runs out.
    if not lease_acquire(name=name, holder=holder, seconds=120):
        return 0
    try:
        have = set(
            Embedding.objects.filter(model_name=model_name, content_hash__in=hashes).values_list(
                "content_hash", flat=True
            )
        )
        return embed_hashes(project=project, hashes=[h for h in hashes if h not in have])
    finally:
        lease_release(name=name, holder=holder)


def embed_missing(
    *,
    project: Project,
    hashes: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    wait_seconds: float = 3600,
) -> int:
    """Embed `hashes` in chunks shared with other workers (a Celery group), returns the count.

    This worker sends the chunks as a group, then works through them itself, skipping chunks
    another worker holds; so one worker finishes alone and every extra worker adds throughput.
    """
    size = chunk_texts(model_name_current())
    chunks = [list(hashes[i : i + size]) for i in range(0, len(hashes), size)]
    model_name = model_name_current()
    if len(chunks) > 1 and settings.PIPELINE_FANOUT:
        from celery import group

        from active_learning.tasks import embed_chunk as task

        # With the broker down, this worker simply does every chunk itself.
        with contextlib.suppress(Exception):
            group(task.s(project.pk, c, model_name) for c in chunks[1:]).apply_async()
    deadline = time.monotonic() + wait_seconds
    pending = list(range(len(chunks)))
    done = 0
    while pending and time.monotonic() < deadline:
        still = []
        for i in pending:
            raise_if_stopping()  # a chunk takes seconds: a stopping worker leaves between two
            embed_chunk(project=project, hashes=chunks[i])
            if _stored_count(model_name, chunks[i]) < len(set(chunks[i])):
                still.append(i)  # another worker holds it: come back to it
                continue
            done += len(chunks[i])
            if progress:  # after every chunk: a million texts take an hour
                progress(done, len(hashes))
        if still:
            time.sleep(0.5)
        pending = still
    return len(hashes)


def _stored_count(model_name: str, hashes: Sequence[str]) -> int:
    return Embedding.objects.filter(model_name=model_name, content_hash__in=hashes).count()
