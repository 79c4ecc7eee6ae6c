"""factory_boy factories for the models, shared by every test package."""

from __future__ import annotations

import uuid

import factory
from django.contrib.auth import get_user_model

from active_learning.ml.hashing import content_hash
from labeling import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    evaluation_fraction = 0.1
    # The steady state: claims draw evaluation items at `evaluation_fraction` (a new project
    # starts short of evidence, at the warm-up share; tests of that say so).
    evaluation_evidence_short = False


class LabelClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LabelClass

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"class_{n}")
    tier = models.Tier.SUPPORTABLE
    shortcut_key = factory.Sequence(
        lambda n: models.SHORTCUT_KEY_ORDER[n % len(models.SHORTCUT_KEY_ORDER)]
    )
    order = factory.Sequence(lambda n: n)


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Case

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"M{n:07d}")
    text = factory.Sequence(lambda n: f"Merchant {n} sells handmade ceramic mugs online.")
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.text))


class QueueItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.QueueItem

    case = factory.SubFactory(CaseFactory)
    project = factory.LazyAttribute(lambda o: o.case.project)


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Annotation

    case = factory.SubFactory(CaseFactory)
    annotator = factory.SubFactory(UserFactory)
    submission_id = factory.LazyFunction(uuid.uuid4)
    content_hash = factory.LazyAttribute(lambda o: o.case.content_hash)


def queued_items(
    project: models.Project,
    n: int,
    *,
    split: str = models.Split.POOL,
    priorities: list[float] | None = None,
    slots: int = 1,
) -> list[models.QueueItem]:
    """`n` new cases of `project` with `slots` open items each (priority from `priorities`)."""
    items = []
    for i in range(n):
        case = CaseFactory(project=project, split=split)
        for slot in range(slots):
            items.append(
                QueueItemFactory(
                    case=case,
                    slot=slot,
                    kind="evaluation" if split == models.Split.EVAL else "pool",
                    priority=priorities[i] if priorities else 0.0,
                )
            )
    return items


class AnalystFactory(UserFactory):
    """A user with an unusable password: no hashing, so tests may create many of them."""

    username = factory.Sequence(lambda n: f"analyst{n}")
    password = "!"
