"""Plain SQL for the hot paths, with model instances in and out but no query compiler between.

On this project's hardware the ORM spends about 2 ms compiling and hydrating a simple SELECT
(0.3 ms as plain SQL), and a label's transaction runs a dozen statements: the queue's submit and
claim use these helpers so their service time stays far below what an analyst notices. Values
are adapted by the model fields themselves (JSON, UUID, datetimes), so the statements behave the
same on PostgreSQL and SQLite. Everything else keeps using the ORM.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

M = TypeVar("M", bound=models.Model)


def _db() -> BaseDatabaseWrapper:
    # The connection itself, not django.db.connection: that proxy looks the thread's connection
    # up again on every attribute, which showed in the queue's profile.
    return connections[DEFAULT_DB_ALIAS]


def row_lock() -> str:
    """`FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE transactions already serialize writers."""
    return "FOR UPDATE" if _db().vendor == "postgresql" else ""


def db_time(value: datetime) -> Any:
    """An aware datetime as a parameter of a plain statement on this backend."""
    return _db().ops.adapt_datetimefield_value(value)


def _connect(db: BaseDatabaseWrapper) -> None:
    # As Django's own cursors do: a persistent connection that died since the last request (a
    # server restart) is replaced here, at the request's first statement, not found broken.
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_no_broken_transaction()


@contextmanager
def _cursor() -> Iterator[Any]:
    # On PostgreSQL a cursor binding parameters on the server, not Django's (which interpolates
    # them on the client), so each statement is prepared on first use (settings:
    # prepare_threshold 0), once per connection: PostgreSQL then skips parsing and planning.
    # In Django's transaction, raising Django's database errors.
    db = _db()
    if db.vendor != "postgresql":
        with db.cursor() as django_cursor:
            yield django_cursor
        return
    _connect(db)
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as pg_cursor:
        yield pg_cursor


def _run(cursor: Any, sql: str, params: Sequence[Any] | dict[str, Any]) -> None:
    db = _db()
    if not db.queries_logged or db.vendor != "postgresql":
        cursor.execute(sql, params)  # elsewhere Django's own cursor logs it
        return
    # Logged as Django logs its own (DEBUG, CaptureQueriesContext, django_assert_num_queries),
    # so a page's statement count includes these.
    started = time.monotonic()
    try:
        cursor.execute(sql, params)
    finally:
        db.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def fetch_one(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
    with _cursor() as c:
        _run(c, sql, params)
        return c.fetchone()


def fetch_all(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
    with _cursor() as c:
        _run(c, sql, params)
        return list(c.fetchall())


def execute(sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
    """Run one statement; returns the number of rows it changed."""
    with _cursor() as c:
        _run(c, sql, params)
        return int(c.rowcount)


_cache: dict[tuple[Any, ...], Any] = {}


def _memo(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


def _columns(model: type[models.Model], attnames: tuple[str, ...]) -> tuple[str, ...]:
    return _memo(("columns", model, attnames), lambda: _ordered(model, attnames))


def _ordered(model: type[models.Model], attnames: tuple[str, ...]) -> tuple[str, ...]:
    # In the model's field order: Model.from_db expects values in that order.
    wanted = set(attnames)
    names = tuple(f.attname for f in model._meta.concrete_fields if f.attname in wanted)
    missing = wanted - set(names)
    if missing:
        raise ValueError(f"{model.__name__} has no columns {sorted(missing)}")
    return names


def select_columns(model: type[models.Model], attnames: Iterable[str], alias: str = "") -> str:
    """The SELECT list for `attnames` in the order `load` expects (qualified by `alias`)."""
    names = _columns(model, tuple(attnames))
    prefix = f"{alias}." if alias else ""

    def make() -> str:
        fields = {f.attname: f.column for f in model._meta.concrete_fields}
        return ", ".join(prefix + db.ops.quote_name(fields[name]) for name in names)

    db = _db()
    return _memo(("select", model, names, prefix, db.vendor), make)


def _converters(model: type[models.Model], names: tuple[str, ...], vendor: str) -> list[list[Any]]:
    return _memo(("converters", model, names, vendor), lambda: _make_converters(model, names))


def _make_converters(model: type[models.Model], names: tuple[str, ...]) -> list[list[Any]]:
    # What the ORM applies to a fetched column: the backend's converters, then the field's.
    db = _db()
    fields = {f.attname: f for f in model._meta.concrete_fields}
    out = []
    for name in names:
        expression = fields[name].get_col(model._meta.db_table)
        out.append(
            [
                (conv, expression)
                for conv in db.ops.get_db_converters(expression) + expression.get_db_converters(db)
            ]
        )
    return out


def load(model: type[M], attnames: Iterable[str], row: Sequence[Any]) -> M:
    """A model instance from a row of `select_columns(model, attnames)`; other fields deferred."""
    names = _columns(model, tuple(attnames))
    values = list(row)
    db = _db()
    for i, converters in enumerate(_converters(model, names, db.vendor)):
        for convert, expression in converters:
            values[i] = convert(values[i], expression, db)
    return model.from_db(db.alias, list(names), values)


def _insert_statement(objs: Sequence[models.Model]) -> tuple[str, list[Any]]:
    model = type(objs[0])
    meta = model._meta
    assert meta.pk is not None
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    db = _db()
    quote = db.ops.quote_name
    values: list[Any] = []
    for obj in objs:
        values.extend(f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields)
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    statement = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([one_row] * len(objs))} RETURNING {quote(meta.pk.column)}"
    )
    return statement, values


def insert(*objs: M) -> list[M]:
    """INSERT unsaved instances of one model in one statement, setting their primary keys.

    Like `bulk_create` without its query compiler: field defaults and `auto_now_add` are
    applied and every value is adapted by its field; no signals are sent.
    """
    if not objs:
        return []
    statement, values = _insert_statement(objs)
    keys = [r[0] for r in fetch_all(statement, values)]
    alias = _db().alias
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = alias
    return list(objs)


class Batch:
    """Writes whose results are read after the block (see `batch`)."""

    def __init__(self, *, pipelined: bool) -> None:
        self._pipelined = pipelined
        self._pending: list[Any] = []  # open cursors (pipelined) or first rows
        self._rows: list[tuple[Any, ...] | None] = []

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Queue a statement; returns the handle of its first row (`row`, after the block)."""
        if self._pipelined:
            db = _db()
            cursor = psycopg.Cursor(db.connection)
            _run(cursor, sql, params)
            self._pending.append(cursor)
        else:
            with _cursor() as c:
                _run(c, sql, params)
                self._pending.append(c.fetchone() if c.description else None)
        return len(self._pending) - 1

    def insert(self, *objs: models.Model) -> None:
        """Queue an INSERT of unsaved instances of one model; their keys are not read back."""
        if objs:
            self.execute(*_insert_statement(objs))

    def row(self, handle: int) -> tuple[Any, ...] | None:
        """The first row a queued statement returned (None without RETURNING or rows)."""
        return self._rows[handle]

    def _collect(self) -> None:
        for pending in self._pending:
            if not self._pipelined:
                self._rows.append(pending)
                continue
            with pending as cursor:
                self._rows.append(cursor.fetchone() if cursor.description else None)


@contextmanager
def batch() -> Iterator[Batch]:
    """Statements queued on the yielded `Batch` go to PostgreSQL together, in one round trip
    (psycopg's pipeline mode), inside the current transaction; an error surfaces at the end of
    the block as Django's. Elsewhere they simply run one by one."""
    db = _db()
    if db.vendor != "postgresql":
        plain = Batch(pipelined=False)
        yield plain
        plain._collect()
        return
    _connect(db)
    queued = Batch(pipelined=True)
    with db.wrap_database_errors:
        with db.connection.pipeline():
            yield queued
        queued._collect()
