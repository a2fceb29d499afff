"""Replaying dead letters from the admin API: one (`replay_letter`), or every parked
letter matching a filter as a job (`replay_matching`), with the running node's intake
policies, hotlines and topology, so that the replay reads a repaired record from its
source exactly as the node would. After a replay the relay is kicked: what was queued
again is published at once, not at its next tick.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import structlog

from bridge.admin.masking import masked
from bridge.engine.replay import ReplayError, replay_dead_letter
from bridge.store import DeadLetterFilter

if TYPE_CHECKING:
    from bridge.app import Node

log = structlog.get_logger(__name__)

MappingChoice = Literal["current", "original"]
BATCH: Final = 50
"""Letters a job reads per query (keyset over ids) and replays before it writes progress."""
PROGRESS_EVERY_S: Final = 5.0
"""A running job writes its counts at least this often (and after every batch): what
`GET /api/v1/jobs/{id}` shows, and the sign that its node is alive."""
FAILURES_KEPT: Final = 20
"""At most this many failed letters are named in a job's result."""


async def replay_letter(
    node: Node, partner: Mapping[str, str], letter_id: int, mapping: MappingChoice
) -> str:
    """Replay one parked letter with the `mapping` tables; returns what was done
    (masked: it names a field's fact, never a value, but a response shows nothing a log
    would not). Raises ReplayError (unknown, not parked, nothing to replay)."""
    from bridge.app import topology_of  # bridge.app imports the admin package

    sides = [side for side in node.sides.values() if side.intake is not None]
    outcome = await replay_dead_letter(
        node.store,
        letter_id,
        intake={side.system: side.intake for side in sides},
        topology=topology_of(node.settings),
        hotlines={side.system: side.hotline for side in sides},
        mapping=mapping,
    )
    return str(masked(outcome))


def kick(node: Node) -> None:
    """Have the relay publish now what a replay queued (a node without one: tests)."""
    if node.relay is not None:
        node.relay.kick()


async def replay_matching(
    node: Node,
    partner: Mapping[str, str],
    job_id: int,
    match: DeadLetterFilter,
    mapping: MappingChoice,
    up_to_id: int,
) -> None:
    """The work of a replay job: every letter matching `match` (parked) with an id up
    to `up_to_id` (the letters that existed when it was asked for; one parked again by
    its replay is not replayed again), in batches by id, counting what was done and
    what failed, then `done` with a result naming the failed letters."""
    store = node.store
    total = await store.count_matching_dead_letters(match, up_to_id=up_to_id)
    await store.start_job(job_id, total)
    done = failed = 0
    failures: list[dict[str, Any]] = []
    after = 0
    written = time.monotonic()
    while ids := await store.dead_letter_ids(match, after_id=after, up_to_id=up_to_id, limit=BATCH):
        for letter_id in ids:
            try:
                await replay_letter(node, partner, letter_id, mapping)
            except (ReplayError, KeyError, ValueError) as exc:  # this letter, not the job
                failed += 1
                if len(failures) < FAILURES_KEPT:
                    failures.append({"letter_id": letter_id, "error": why(exc)})
            else:
                done += 1
            if time.monotonic() - written >= PROGRESS_EVERY_S:
                await store.job_progress(job_id, done, failed)
                written = time.monotonic()
        after = ids[-1]
        kick(node)
        await store.job_progress(job_id, done, failed)
        written = time.monotonic()
    await store.finish_job(
        job_id, "done", {"failures": failures, "failures_truncated": failed > len(failures)}
    )
    log.info("job.finished", job_id=job_id, kind="replay", done=done, failed=failed)


def why(exc: Exception) -> str:
    """Why a letter cannot be replayed, as a response or a job's result may say it: a
    payload that does not parse is named by the error's type only (a validation error's
    text quotes the payload)."""
    if isinstance(exc, ReplayError):
        return str(masked(str(exc)))
    return f"the letter's payload cannot be replayed ({type(exc).__name__})"
