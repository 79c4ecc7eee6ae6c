"""Named database leases: a lock that survives no crash, because it runs out.

`lease_acquire` takes a free or expired lease in one transaction; the holder renews it while it
works and releases it at the end. A dead holder's lease expires, or the reaper frees it with its
job. Works the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from workbench.core.models import Job, Lease


def lease_acquire(*, name: str, holder: str, seconds: float, job: Job | None = None) -> bool:
    """Take the lease `name` for `seconds` unless someone else holds it unexpired."""
    now = timezone.now()
    expires = now + timedelta(seconds=seconds)
    try:
        with transaction.atomic():
            current = Lease.objects.select_for_update().filter(name=name).first()
            if current is None:
                Lease.objects.create(name=name, holder=holder, job=job, expires_at=expires)
                return True
            if current.holder != holder and current.expires_at > now:
                return False
            current.holder, current.job, current.expires_at = holder, job, expires
            current.save(update_fields=["holder", "job", "expires_at"])
            return True
    except IntegrityError:  # another process created it between our read and insert
        return False


def lease_renew(*, name: str, holder: str, seconds: float) -> bool:
    """Extend our lease; False when it is no longer ours."""
    expires = timezone.now() + timedelta(seconds=seconds)
    return bool(Lease.objects.filter(name=name, holder=holder).update(expires_at=expires))


def lease_release(*, name: str, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).delete()


def lease_holder(*, name: str) -> str | None:
    """Who holds `name` now (None when free or expired)."""
    lease = Lease.objects.filter(name=name, expires_at__gt=timezone.now()).first()
    return lease.holder if lease else None
