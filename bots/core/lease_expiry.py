"""Leases that ran out: the jobs of workers that died, found by any process that keeps the shared queue.

Run inside a queue turn (`bots.core.shared_queue`). A job whose lease ran out goes back to the queue keeping its
age, or fails after `max_attempts` starts. Two ways a worker can die between the two records of a batch's end are
mended too: the end counted in the queue but not written (the job is given back for the core to queue it again),
and the end written but not counted (it is counted now).
"""

from __future__ import annotations

import logging

from bots.core.queue_replica import QueueReplica
from storage.queue_log import QueueTurn

log = logging.getLogger(__name__)


def expire_leases(
    turn: QueueTurn, replica: QueueReplica, lease_seconds: float, max_attempts: int
) -> tuple[list[str], list[str]]:
    """The jobs to fail (started too often, or no longer fitting the queue's caps), and the active jobs the queue
    no longer holds."""
    expired = turn.expired()
    ended = turn.ended(sorted(replica.running), turn.now - lease_seconds)
    if ended:  # written, and the worker died before the end was counted
        replica.expire(ended, [], turn.now)
        replica.recorded(turn.append("expire", {"jobs": ended, "retry": []}))
    if not expired:
        return [], []
    running = [job_id for job_id, _, _ in expired if job_id in replica.running]
    tries = [job_id for job_id, attempts, active in expired if active and attempts < max_attempts]
    retried = replica.expire(running, [job_id for job_id in tries if job_id in running], turn.now)
    replica.recorded(turn.append("expire", {"jobs": running, "retry": retried}))
    turn.release([job_id for job_id, _, _ in expired])
    log.warning("leases ran out for job(s) %s: %s back in the queue", ", ".join(running), retried or "none")
    unknown = [job_id for job_id, _, active in expired if active and job_id not in running]
    known = [job_id for job_id, _, active in expired if active and job_id in running]
    return [job_id for job_id in known if job_id not in retried], unknown
