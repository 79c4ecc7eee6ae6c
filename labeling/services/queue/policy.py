"""Which kinds of queue item each role takes, in which order: the claim's per-project policy.

An order is a sequence of steps; each is a kind (`pool`, `evaluation`, `review`,
`adjudication`) or `draw`, the seeded evaluation-or-pool draw (DESIGN: evaluation items reach
analysts by a draw at the project's evaluation fraction, never by a model's order). A claim takes
the first step that has an open item. A project's `claim_policy` may reorder a role's steps, but
never hands a role a kind it may not take: analysts never see review or adjudication items.

Gold items (decided cases served back to measure analysts) are never a step of their own: a step
that serves pool items (`GOLD_STEPS`: the draw, or `pool`) first tries a gold item when a seeded
gold draw says so, at the project's `gold_fraction` of claims, so a policy cannot ask for more.
"""

from __future__ import annotations

from collections.abc import Mapping

from labeling.models import Project, ProjectRole, QueueKind

DRAW = "draw"

DEFAULT_POLICY: Mapping[str, tuple[str, ...]] = {
    ProjectRole.ANALYST: (DRAW,),
    ProjectRole.REVIEWER: (QueueKind.ADJUDICATION, QueueKind.REVIEW, QueueKind.POOL),
    ProjectRole.ADMIN: (QueueKind.ADJUDICATION, QueueKind.REVIEW, QueueKind.POOL),
}
_ANALYST_KINDS = frozenset({DRAW, QueueKind.POOL, QueueKind.EVALUATION})
ALLOWED: Mapping[str, frozenset[str]] = {
    ProjectRole.ANALYST: _ANALYST_KINDS,
    ProjectRole.REVIEWER: _ANALYST_KINDS | {QueueKind.REVIEW, QueueKind.ADJUDICATION},
    ProjectRole.ADMIN: _ANALYST_KINDS | {QueueKind.REVIEW, QueueKind.ADJUDICATION},
}

# Steps whose claims may serve a gold item instead of a pool item (by the gold draw).
GOLD_STEPS = frozenset({DRAW, QueueKind.POOL})

ERR_POLICY = "Claim policy for {role}: {step!r} is not a queue kind that role may take."


def policy_problems(policy: object) -> list[str]:
    """What is wrong with a `claim_policy` value (empty when it can be used)."""
    if not isinstance(policy, dict):
        return ["The claim policy must map roles to lists of queue kinds."]
    problems = []
    for role, steps in policy.items():
        allowed = ALLOWED.get(str(role))
        if allowed is None or not isinstance(steps, list) or not steps:
            problems.append(f"Claim policy: {role!r} needs a non-empty list of queue kinds.")
            continue
        problems += [ERR_POLICY.format(role=role, step=s) for s in steps if s not in allowed]
    return problems


def claim_order(*, project: Project, role: str) -> tuple[str, ...]:
    """The steps a claim of `role` tries, in order (the project's policy, else the default)."""
    role = role if role in DEFAULT_POLICY else str(ProjectRole.ANALYST)
    custom = project.claim_policy if isinstance(project.claim_policy, dict) else {}
    steps = custom.get(role)
    if isinstance(steps, list) and steps and all(s in ALLOWED[role] for s in steps):
        return tuple(str(s) for s in steps)
    return tuple(str(s) for s in DEFAULT_POLICY[role])
