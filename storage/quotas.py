"""The quota ledger: what each job charges its owner for a day.

One row per job, changed in place: `reserved` when the job is submitted, `committed` with the actual
GPU seconds when it is done, `refunded` when it failed or was cancelled. A user's usage for a day is
the sum of their rows of that day that are not refunded, so a reservation counts as soon as it is
made. Every step is idempotent per job: reserving again returns the first reservation, committing
again keeps the first commit, refunding again changes nothing; only committing a refunded charge is
refused. Committing or refunding a job that reserved nothing returns None.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.errors import InvalidTransition, QuotaExceeded
from storage.models import QuotaChargeRow, UserRow
from storage.records import QuotaCharge, QuotaReservation, QuotaState, QuotaUsage
from storage.repository import Repository


class Quotas(Repository):
    async def reserve_quota(
        self,
        user_id: int,
        job_id: str,
        day: date,
        images: int,
        gpu_seconds: float,
        *,
        max_images: int | None = None,
        max_gpu_seconds: float | None = None,
    ) -> QuotaCharge:
        """Charge an existing job's estimate to `user_id` for `day`.

        With limits, the check against the day's usage happens in the same transaction, under a lock on
        the user's row, so concurrent submissions cannot overdraw; over a limit, `QuotaExceeded` is raised
        and nothing is written.
        """
        reservation = QuotaReservation(day, images, gpu_seconds, max_images, max_gpu_seconds)

        def work(session: Session) -> QuotaCharge:
            return reserve_charge(session, user_id, job_id, reservation, self._now())

        return await self._sessions.run(work)

    async def commit_quota(self, job_id: str, gpu_seconds: float) -> QuotaCharge | None:
        """Settle a job's reservation at the GPU seconds it actually took."""
        return await self._sessions.run(commit_charge, job_id, gpu_seconds)

    async def refund_quota(self, job_id: str) -> QuotaCharge | None:
        """Give a job's charge back, whether only reserved or already committed."""

        def work(session: Session) -> QuotaCharge | None:
            row = session.get(QuotaChargeRow, job_id, with_for_update=True)
            if row is None:
                return None
            row.state = QuotaState.REFUNDED
            return row.record()

        return await self._sessions.run(work)

    async def quota_usage(self, user_id: int, day: date) -> QuotaUsage:
        def work(session: Session) -> QuotaUsage:
            return _usage(session, user_id, day)

        return await self._sessions.run(work)


def reserve_charge(
    session: Session, user_id: int, job_id: str, reservation: QuotaReservation, now: datetime
) -> QuotaCharge:
    """Inside a caller's transaction: check the day's usage under a lock on the user's row, then charge."""
    existing = session.get(QuotaChargeRow, job_id)
    if existing is not None:
        return existing.record()
    session.execute(select(UserRow.id).where(UserRow.id == user_id).with_for_update())
    usage = _usage(session, user_id, reservation.day)
    over = over_limit(reservation, usage.images, usage.gpu_seconds)
    if over is not None:
        raise over
    row = charge_row(job_id, user_id, reservation, now)
    session.add(row)
    return row.record()


def over_limit(reservation: QuotaReservation, images: int, gpu_seconds: float) -> QuotaExceeded | None:
    """The refusal of `reservation` on a day that has used `images` and `gpu_seconds` already; None if it fits."""
    if reservation.max_images is not None and images + reservation.images > reservation.max_images:
        return QuotaExceeded("images", images, reservation.images, reservation.max_images)
    limit = reservation.max_gpu_seconds
    if limit is not None and gpu_seconds + reservation.gpu_seconds > limit:
        return QuotaExceeded("gpu_seconds", gpu_seconds, reservation.gpu_seconds, limit)
    return None


def charge_row(job_id: str, user_id: int, reservation: QuotaReservation, now: datetime) -> QuotaChargeRow:
    """A job's reserved charge, as both a single reservation and a group of new jobs write it."""
    return QuotaChargeRow(
        job_id=job_id,
        user_id=user_id,
        day=reservation.day,
        images=reservation.images,
        gpu_seconds=reservation.gpu_seconds,
        state=QuotaState.RESERVED,
        created_at=now,
    )


def commit_charge(session: Session, job_id: str, gpu_seconds: float) -> QuotaCharge | None:
    """Inside a caller's transaction: reserved becomes committed at the actual seconds; idempotent."""
    row = session.get(QuotaChargeRow, job_id, with_for_update=True)
    if row is None:
        return None
    if row.state is QuotaState.REFUNDED:
        raise InvalidTransition(f"quota charge of job {job_id}", row.state, QuotaState.COMMITTED)
    if row.state is QuotaState.RESERVED:
        row.state = QuotaState.COMMITTED
        row.gpu_seconds = gpu_seconds
    return row.record()


def _usage(session: Session, user_id: int, day: date) -> QuotaUsage:
    images, gpu_seconds = (
        session.execute(
            select(
                func.coalesce(func.sum(QuotaChargeRow.images), 0),
                func.coalesce(func.sum(QuotaChargeRow.gpu_seconds), 0.0),
            ).where(
                QuotaChargeRow.user_id == user_id,
                QuotaChargeRow.day == day,
                QuotaChargeRow.state != QuotaState.REFUNDED,
            )
        )
    ).one()
    return QuotaUsage(images=int(images), gpu_seconds=float(gpu_seconds))
