"""The queue's hot path in plain SQL: the statements a submit, the next claim and the next card
run, and the project and role every page of a project reads.

Only these (and the session and user, `workbench/core/auth.py`) bypass the ORM (measured: the
ORM spent ~0.6-2 ms compiling each SELECT on this hardware, and an answer with its next card is
19 statements); everything else uses the ORM. Status and kind values come from the enums, never
typed as literals. `{lock}` and similar placeholders are filled per vendor by the caller;
`%(name)s` are bound parameters.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from labeling.models import (
    Annotation,
    Case,
    LabelClass,
    Project,
    ProjectMembership,
    QueueAction,
    QueueCursor,
    QueueItem,
    QueueKind,
    QueueStatus,
    ResolutionSource,
    ResolvedLabel,
)
from workbench.core import sql
from workbench.core.models import Job, JobKind, JobStatus

QI = QueueItem._meta.db_table
ANN = Annotation._meta.db_table
CUR = QueueCursor._meta.db_table
PROJECT = Project._meta.db_table
CASE = Case._meta.db_table
RESOLVED = ResolvedLabel._meta.db_table

OPEN, CLAIMED, DONE = QueueStatus.OPEN.value, QueueStatus.CLAIMED.value, QueueStatus.DONE.value
ITEMS_SHOWN = 2  # the current item and the pre-claimed next one

# Open items of one kind, best first, that this analyst may take: none of a case they hold, did
# or skipped (the unique (case, assigned_to) constraint is the backstop for the first two). The
# kind is written into the text, not bound: a prepared statement per kind keeps the partial index
# of open evaluation items usable (a generic plan could not prove a bound kind matches it).
CLAIM = f"""
UPDATE {QI} SET status = '{CLAIMED}', assigned_to_id = %(analyst)s, lease_expires_at = %(lease)s,
       claimed_at = %(now)s, front_at = NULL, updated_at = %(now)s
WHERE id = (
    SELECT q.id FROM {QI} q
    WHERE q.project_id = %(project)s AND q.status = '{OPEN}' AND q.kind = '{{kind}}'
      AND NOT EXISTS (
          SELECT 1 FROM {QI} m WHERE m.case_id = q.case_id AND m.assigned_to_id = %(analyst)s
          AND m.status IN ('{CLAIMED}', '{DONE}'))
      AND NOT EXISTS (
          SELECT 1 FROM {ANN} s WHERE s.case_id = q.case_id AND s.annotator_id = %(analyst)s
          AND s.skipped AND s.superseded_at IS NULL) {{unseen}}
    ORDER BY {{order}}
    LIMIT 1 {{lock}}
) AND status = '{OPEN}'
RETURNING id, {{low_check}}
"""
ORDER_RANDOM = "q.random_key, q.id"  # evaluation items: a random order, never a model's
# Everything else, best first; gold items all have priority 0, so oldest first (the stock's own
# order: fewest gold answers first), read in index order: the claim stops at the first it may take.
ORDER_PRIORITY = "q.priority DESC, q.id"
# Gold items only (`{unseen}`): never a case the analyst ever answered in any way (labelled,
# decided, skipped, a gold answer, superseded or not), so nobody is measured on their own
# decision or sees one gold case twice; and only while the case is still decided with a label
# (an undo may have taken the decision back since the stock was made). Other kinds leave
# `{unseen}` empty, so their statements are as they were.
GOLD_SOURCES = f"('{ResolutionSource.REVIEW.value}', '{ResolutionSource.ADJUDICATED.value}')"
GOLD_UNSEEN = f"""AND NOT EXISTS (
          SELECT 1 FROM {ANN} g WHERE g.case_id = q.case_id AND g.annotator_id = %(analyst)s)
      AND EXISTS (
          SELECT 1 FROM {RESOLVED} r WHERE r.case_id = q.case_id AND r.source IN {GOLD_SOURCES}
          AND r.label_id IS NOT NULL AND NOT r.excluded)"""
# Fewer open pool items than twice a batch: refill. Checked every few claim numbers of an
# analyst (the scan costs as much as the claim): with several analysts at work, a few claims.
# Only pool items count: the refill makes pool items, and the evaluation stock (up to three
# batches while evidence is short) is kept by the retrain's refresh.
LOW = f"""NOT EXISTS (
    SELECT 1 FROM {QI} o WHERE o.project_id = %(project)s AND o.status = '{OPEN}'
    AND o.kind = '{QueueKind.POOL.value}' LIMIT 1 OFFSET %(low)s)"""

RELEASE_EXPIRED = f"""
UPDATE {QI} SET status = '{OPEN}', assigned_to_id = NULL, lease_expires_at = NULL,
       claimed_at = NULL, front_at = NULL, updated_at = %(now)s
WHERE id IN (
    SELECT id FROM {QI} WHERE status = '{CLAIMED}' AND lease_expires_at < %(now)s {{project}}
    {{lock}}
)
"""

# The analyst's held items, and which have less than half their lease left. Read, not updated:
# renewing every lease at every claim rewrote two rows (and all their index entries) per answer.
HELD = f"""
SELECT id, lease_expires_at < %(renew)s, kind FROM {QI}
WHERE project_id = %(project)s AND assigned_to_id = %(analyst)s AND status = '{CLAIMED}'
"""
# Held items of a kind the analyst's role no longer takes (a reviewer made an analyst again)
# go back to the queue, rather than coming back to a card they may not answer.
RELEASE_MINE = f"""
UPDATE {QI} SET status = '{OPEN}', assigned_to_id = NULL, lease_expires_at = NULL,
       claimed_at = NULL, front_at = NULL, updated_at = %(now)s
WHERE id IN ({{ids}}) AND assigned_to_id = %(analyst)s AND status = '{CLAIMED}'
"""
RENEW = f"""
UPDATE {QI} SET lease_expires_at = %(lease)s, updated_at = %(now)s
WHERE id IN ({{ids}}) AND assigned_to_id = %(analyst)s AND status = '{CLAIMED}'
RETURNING id
"""

# Locks the analyst's cursor row for the transaction, so one analyst's claims run one at a time,
# and reserves the claim numbers of the draws this claim may make (unused ones are skipped: each
# draw is an independent seeded coin, so skipping numbers biases nothing).
CURSOR = f"""
INSERT INTO {CUR} (project_id, analyst_id, claims)
VALUES (%(project)s, %(analyst)s, {ITEMS_SHOWN})
ON CONFLICT (project_id, analyst_id) DO UPDATE SET claims = {CUR}.claims + {ITEMS_SHOWN}
RETURNING claims - {ITEMS_SHOWN} {{relaxed}}
"""
# A claim is a lease, not data: if a crash loses it the item is simply open again, so its commit
# need not wait for the WAL flush (about 1 ms here). Only in its own transaction, never a label's.
RELAXED_COMMIT = ", set_config('synchronous_commit', 'off', true)"

# A label completes the item its analyst holds of the case.
FINISH_MINE = f"""
UPDATE {QI} SET status = '{DONE}', completed_at = %(now)s, lease_expires_at = NULL,
       front_at = NULL, updated_at = %(now)s
WHERE case_id = %(case)s AND assigned_to_id = %(analyst)s AND status = '{CLAIMED}'
RETURNING id
"""
DONE_MINE = f"""
SELECT id FROM {QI} WHERE case_id = %(case)s AND assigned_to_id = %(analyst)s
AND status = '{DONE}' {{lock}}
"""

# Due: the counter passed N and no retrain is queued or running (columns qualified by table
# name: SQLite's RETURNING takes no alias).
_DUE = f"""{PROJECT}.labels_since_training >= {PROJECT}.retrain_after_n AND NOT EXISTS (
    SELECT 1 FROM {Job._meta.db_table} j WHERE j.project_id = {PROJECT}.id
    AND j.kind = '{JobKind.RETRAIN.value}'
    AND j.status IN ('{JobStatus.QUEUED.value}', '{JobStatus.RUNNING.value}'))"""
RETRAIN_DUE = f"SELECT 1 FROM {PROJECT} WHERE id = %(project)s AND {_DUE}"
# Counts one more label since training; returns whether that makes a retrain due (none pending).
# Run it last in the label's transaction: it locks the project's row until commit.
COUNT_LABEL = f"""
UPDATE {PROJECT} SET labels_since_training = labels_since_training + 1
WHERE id = %(project)s RETURNING {_DUE}
"""


# Statements whose SELECT lists depend on the database vendor (quoting): built per call, memoized
# by `sql.select_columns`.


def lock_case(fields: tuple[str, ...]) -> str:
    """A case's row, locked for the label's transaction; only `fields` are read."""
    return f"SELECT {sql.select_columns(Case, fields)} FROM {CASE} WHERE id = %s {sql.row_lock()}"


CLASS_OF_PROJECT = f"SELECT id FROM {LabelClass._meta.db_table} WHERE id = %s AND project_id = %s"


def supersede(count: int) -> str:
    """Mark `count` annotations superseded by a new one (params: new id, time, the ids)."""
    ids = ", ".join(["%s"] * count)
    return f"UPDATE {ANN} SET superseded_by_id = %s, superseded_at = %s WHERE id IN ({ids})"


def resolution_inputs(resolved: tuple[str, ...], current: tuple[str, ...]) -> str:
    """A case's stored resolution and its current annotations, one row per annotation."""
    return (
        f"SELECT {sql.select_columns(ResolvedLabel, resolved, 'r')}, "
        f"{sql.select_columns(Annotation, current, 'a')} FROM {CASE} c "
        f"LEFT JOIN {RESOLVED} r ON r.case_id = c.id "
        f"LEFT JOIN {ANN} a ON a.case_id = c.id AND a.superseded_at IS NULL "
        "WHERE c.id = %s ORDER BY a.id"
    )


# A case's resolved label changed: it moves to the top of the search's default order.
CASE_CHANGED = f"UPDATE {CASE} SET changed_at = %s WHERE id = %s"

RESOLUTION_UPDATE = (
    f"UPDATE {RESOLVED} SET label_id = %s, source = %s, confidence = %s, agreement = %s, "
    "doubtful = %s, "
    "excluded = %s, updated_at = %s WHERE id = %s"
)


def ticket_item(fields: tuple[str, ...]) -> str:
    """The project's item a card's ticket names (params: item id, project id)."""
    return f"SELECT {sql.select_columns(QueueItem, fields)} FROM {QI} WHERE id = %s AND project_id = %s"


def items_with_cases(item: tuple[str, ...], case: tuple[str, ...], count: int) -> str:
    """`count` items by id with their cases, as `select_related("case")` would."""
    return (
        f"SELECT {sql.select_columns(QueueItem, item, 'q')}, "
        f"{sql.select_columns(Case, case, 'c')} "
        f"FROM {QI} q JOIN {CASE} c ON c.id = q.case_id "
        f"WHERE q.id IN ({', '.join(['%s'] * count)})"
    )


# A page's project, in one statement where the ORM took three (project, membership, groups):
# the user's membership role and the highest role rank their groups or own permissions grant
# (codenames bound as %(admin)s, %(reviewer)s, %(analyst)s; NULL: none).
_USER = get_user_model()
_GROUP_RANK = f"""(SELECT max(CASE ap.codename WHEN %(admin)s THEN 3 WHEN %(reviewer)s THEN 2
        WHEN %(analyst)s THEN 1 END)
    FROM {Permission._meta.db_table} ap
    JOIN {ContentType._meta.db_table} ct ON ct.id = ap.content_type_id
    WHERE ct.app_label = 'labeling' AND ap.codename IN (%(admin)s, %(reviewer)s, %(analyst)s)
      AND (EXISTS (SELECT 1 FROM {_USER.groups.through._meta.db_table} ug
                   JOIN {Group.permissions.through._meta.db_table} gp ON gp.group_id = ug.group_id
                   WHERE ug.user_id = %(user)s AND gp.permission_id = ap.id)
           OR EXISTS (SELECT 1 FROM {_USER.user_permissions.through._meta.db_table} up
                      WHERE up.user_id = %(user)s AND up.permission_id = ap.id)))"""


def project_for(fields: tuple[str, ...]) -> str:
    """The project by %(slug)s with the membership role and group rank of user %(user)s."""
    return (
        f"SELECT {sql.select_columns(Project, fields, 'p')}, "
        f"(SELECT m.role FROM {ProjectMembership._meta.db_table} m "
        "WHERE m.project_id = p.id AND m.user_id = %(user)s), "
        f"{_GROUP_RANK} FROM {PROJECT} p WHERE p.slug = %(slug)s"
    )


# The key of a project's classes (count, highest id, sum of versions: see LabelClass): it
# changes with any committed insert, delete or edit of them.
CLASSES_KEY = f"""(SELECT count(*) || ':' || coalesce(max(k.id), 0) || ':' || coalesce(sum(k.version), 0)
    FROM {LabelClass._meta.db_table} k WHERE k.project_id = %(project)s)"""


def queue_page_facts(action: tuple[str, ...], annotation: tuple[str, ...]) -> str:
    """What the queue page shows besides the card, in one row: the key of the project's classes,
    the analyst's answers since %(midnight)s (skips and undone ones not counted), the open items
    left (counted up to %(cap)s: a queue of 150,000 must not cost a full count per card), and
    the action the undo button undoes, with its annotation and case's external id (NULLs when
    none): the newest not undone among the analyst's last %(depth)s."""
    return f"""
SELECT {CLASSES_KEY},
    (SELECT count(*) FROM {ANN} t JOIN {CASE} tc ON tc.id = t.case_id
     WHERE t.annotator_id = %(analyst)s AND t.created_at >= %(midnight)s
       AND tc.project_id = %(project)s AND NOT t.skipped AND t.superseded_at IS NULL),
    (SELECT count(*) FROM (SELECT 1 FROM {QI} WHERE project_id = %(project)s
       AND status = '{OPEN}' LIMIT %(cap)s) o),
    {sql.select_columns(QueueAction, action, "u")},
    {sql.select_columns(Annotation, annotation, "a")}, c.external_id
FROM (SELECT 1 AS one) x
LEFT JOIN (
    SELECT * FROM {QueueAction._meta.db_table} WHERE id IN (
        SELECT id FROM {QueueAction._meta.db_table}
        WHERE project_id = %(project)s AND analyst_id = %(analyst)s ORDER BY id DESC LIMIT %(depth)s)
    AND undone_at IS NULL ORDER BY id DESC LIMIT 1
) u ON 1 = 1
LEFT JOIN {ANN} a ON a.id = u.annotation_id
LEFT JOIN {CASE} c ON c.id = a.case_id
"""


def similar_cases(case: tuple[str, ...], resolved: tuple[str, ...], chars: int, count: int) -> str:
    """`count` cases of project %s by id with their resolutions (NULLs when none) and the first
    `chars` characters of their text (the rest is never read)."""
    return (
        f"SELECT {sql.select_columns(Case, case, 'c')}, "
        f"{sql.select_columns(ResolvedLabel, resolved, 'r')}, substr(c.text, 1, {int(chars)}) "
        f"FROM {CASE} c LEFT JOIN {RESOLVED} r ON r.case_id = c.id "
        f"WHERE c.project_id = %s AND c.id IN ({', '.join(['%s'] * count)})"
    )
