"""What the CLI does without a daemon: read the store directly (`status --store`,
`dead-letters list --store`) and try each connection a node needs (`check-config
--connect`). Everything that changes something goes through the admin API
(`bridge.cli_admin`), where it is authorised and audited.

The store readers answer in the shape of the admin API's (`StatusOut`, `DeadLetterOut`)
where the store can tell, with `"source": "store"`; they open the store without
migrating it and never write to it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from sqlalchemy.engine import make_url

from bridge.app import build_side
from bridge.config import Settings
from bridge.mapping import MappingTables
from bridge.store import DeadLetterRow, Store
from bridge.store.engine import create_engine, head_revision

CONNECT_TIMEOUT_S = 10.0
_PAGE = 500


class StoreUnavailable(Exception):
    """The store cannot be read as it is (no file, another schema revision)."""


async def open_read_only(url: str) -> Store:
    """The store at `url`, not migrated (a CLI must not change a daemon's schema); raises
    StoreUnavailable for a SQLite file that does not exist or a schema that is not this
    package's head."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and not Path(parsed.database or "").exists():
        raise StoreUnavailable(f"no store file at {parsed.database}")
    store = Store(create_engine(url))
    try:
        revision, head = await store.schema_revision(), head_revision()
    except BaseException:
        await store.aclose()
        raise
    if revision != head:
        await store.aclose()
        raise StoreUnavailable(
            f"the store's schema is at revision {revision}, this CLI reads {head}: "
            "start the daemon once to migrate it"
        )
    return store


async def status(settings: Settings) -> dict[str, Any]:
    """What `GET /api/v1/status` answers that the store alone can tell (no node, sides,
    or SLA figures: those live in the daemon)."""
    store = await open_read_only(settings.store.url)
    try:
        stats = await store.stats()
        figures = await store.figures()
        runs = await store.list_reconciliations(limit=1)
    finally:
        await store.aclose()
    parked = sum(figures.parked.values())
    oldest = stats["outbox_oldest_pending_at"]
    problems = []
    if parked:
        problems.append(
            {
                "severity": "warning",
                "what": "dead letters",
                "detail": f"{parked} parked, waiting for an admin",
            }
        )
    return {
        "source": "store",
        "problems": problems,
        "node": None,
        "sides": {},
        "outbox": {
            "depth": stats["outbox_backlog"],
            "oldest_age_s": _age_s(oldest) if oldest else None,
        },
        "dead_letters": {
            "parked": parked,
            "by_reason": [
                {"system": system, "stage": stage, "field": None, "count": count}
                for (system, stage), count in sorted(figures.parked.items())
            ],
        },
        "early_warnings_open": stats["early_warning"],
        "sla": None,
        "last_reconciliation": _run(runs[0]) if runs else None,
        "referrals": {"total": stats["referrals_total"], "by_state": stats["referrals_by_state"]},
    }


async def list_dead_letters(
    settings: Settings,
    *,
    status: str | None = "parked",
    system: str | None = None,
    stage: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    referral_id: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Dead letters as `GET /api/v1/dead-letters` lists them (payloads masked, oldest
    first), at most `limit`; `reason` is a substring, `since`/`until` bound `created_at`."""
    store = await open_read_only(settings.store.url)
    items: list[dict[str, Any]] = []
    try:
        offset = 0
        while len(items) < limit:
            rows = await store.list_dead_letters(
                status=status,
                system=system,
                stage=stage,
                referral_id=referral_id,
                limit=_PAGE,
                offset=offset,
            )
            offset += len(rows)
            items += [_letter(r) for r in rows if _matches(r, reason, since, until)]
            if len(rows) < _PAGE:
                break
    finally:
        await store.aclose()
    return {"source": "store", "items": items[:limit], "next_cursor": None}


def _matches(
    row: DeadLetterRow, reason: str | None, since: datetime | None, until: datetime | None
) -> bool:
    return (
        (reason is None or reason.lower() in row.reason.lower())
        and (since is None or row.created_at >= since)
        and (until is None or row.created_at < until)
    )


def _letter(row: DeadLetterRow) -> dict[str, Any]:
    """As `GET /api/v1/dead-letters` shows it to a `read` token."""
    from bridge.admin.dead_letters import letter_out

    return letter_out(row, unmask=False).model_dump(mode="json")


def _run(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "dry_run": getattr(run, "dry_run", False),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "counts": run.counts,
        "report": getattr(run, "report", None),
    }


def _age_s(at: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - at).total_seconds())


# check-config --connect -----------------------------------------------------------------


async def check_connections(settings: Settings) -> list[tuple[str, str | None]]:
    """Try the broker, the store and each configured hotline, in that order: `(what,
    None)` when it answered, `(what, reason)` when not. A reason names the error's type
    and message with any URL password hidden; nothing is raised for a failed check."""
    results = [
        ("broker", await _attempt(lambda: _broker(settings.amqp.url))),
        ("store", await _attempt(lambda: _store(settings.store.url))),
    ]
    tables = MappingTables.from_config(settings.mapping or None)
    async with aiohttp.ClientSession() as session:
        for system in settings.bridge.sides:
            side = build_side(system, settings, session, tables)
            try:
                results.append((f"hotline {system}", await _attempt(side.hotline.ping)))
            finally:
                await side.hotline.aclose()
    return results


async def _attempt(check: Callable[[], Awaitable[None]]) -> str | None:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await check()
    except TimeoutError:
        return f"no answer within {CONNECT_TIMEOUT_S:g}s"
    except Exception as exc:  # the check's outcome: reported, never raised
        return _reason(exc)
    return None


async def _broker(url: str) -> None:
    connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_S)
    await connection.close()


async def _store(url: str) -> None:
    store = await Store.connect(url)  # migrates, as the daemon does at start
    try:
        await store.ping()
    finally:
        await store.aclose()


def _reason(exc: BaseException) -> str:
    text = re.sub(r"://([^:/@\s]*):[^@\s]*@", r"://\1:***@", str(exc).strip())
    text = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
