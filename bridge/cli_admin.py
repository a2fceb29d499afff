"""The CLI's admin commands, each a call (or a few) to a node's admin API (see
`bridge.cli_target` for the URL, token, output and exit status they share):

    status [--store]                       problems first, then lag, backlog, dead letters
    referrals list [filters] [--all]       referrals show ID
    dead-letters list [filters] [--store]  dead-letters replay ID… | --filter [filters]
    dead-letters discard ID… [--reason]    reconcile [--dry-run]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from bridge import cli_render as render
from bridge import runtime
from bridge.admin_client import AdminClient, ApiError
from bridge.cli_target import (
    EXIT_API,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    LETTER_STATUSES,
    STAGES,
    STATES,
    IsoTime,
    Target,
    admin_options,
    follow_job,
    follow_reconciliation,
    path_id,
)


def register(group: click.Group) -> None:
    """Add the admin commands to the `hotline-bridge` group."""
    for command in (status, referrals, dead_letters, reconcile):
        group.add_command(command)


def _store_or_exit(read: Any) -> Any:
    """Run a store reader of `bridge.ops`: a store that cannot be read exits 2 (not as
    expected) or 3 (did not answer)."""
    from bridge.ops import StoreUnavailable

    try:
        return runtime.run(read)
    except StoreUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except (OSError, TimeoutError) as exc:
        click.echo(f"cannot read the store: {type(exc).__name__}", err=True)
        sys.exit(EXIT_UNREACHABLE)


@click.command()
@admin_options
@click.option("--store", "from_store", is_flag=True, help="read the store (daemon down)")
def status(target: Target, from_store: bool) -> None:
    """Is the node healthy: problems first, then per side, outbox, dead letters, SLA."""
    if from_store:
        from bridge import ops

        doc = _store_or_exit(ops.status(target.settings()))
    else:
        doc = target.run(lambda api: api.get("/api/v1/status"), store_hint=True)
    target.print(doc, render.status)


@click.group()
def referrals() -> None:
    """Where referrals stand on both sides."""


def _flag(name: str, help: str) -> Callable[[Any], Any]:
    return click.option(f"--{name}/--no-{name}", default=None, help=help)


@referrals.command("list")
@admin_options
@click.option("--state", type=click.Choice(STATES))
@click.option("--direction", help="`<origin>-<target>`, e.g. 12345-12351")
@click.option("--district", help="a district code, e.g. 110105")
@click.option("--priority", help="normal, urgent or early_warning")
@_flag("early-warning", "only referrals flagged 预警 (or, --no-, not flagged)")
@_flag("overdue", "only those past a deadline")
@_flag("at-risk", "only those near a deadline")
@_flag("parked", "only those with a parked dead letter")
@click.option("--updated-since", type=IsoTime(), help="updated at or after this time")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--all", "every", is_flag=True, help="every page, not only the first")
@click.option("--unmask", is_flag=True, help="personal data unmasked (operate token; audited)")
def referrals_list(
    target: Target, every: bool, updated_since: datetime | None, **filters: Any
) -> None:
    """Referrals matching every filter given, as the admin API lists them."""
    query = {**filters, "updated_since": updated_since.isoformat() if updated_since else None}
    page = target.run(lambda api: api.pages("/api/v1/referrals", every=every, **query))
    target.print(page, render.referrals)


@referrals.command("show")
@admin_options
@click.argument("referral_id")
@click.option("--unmask", is_flag=True, help="personal data unmasked (operate token; audited)")
def referrals_show(target: Target, referral_id: str, unmask: bool) -> None:
    """One referral by its id or `<system>:<number>` (e.g. 12351:12351-2026-0001234):
    both sides' ids, numbers and statuses, deadlines, and the timeline."""
    doc = target.run(
        lambda api: api.get(f"/api/v1/referrals/{path_id(referral_id)}", unmask=unmask or None)
    )
    target.print(doc, render.referral)


@click.group("dead-letters")
def dead_letters() -> None:
    """What is parked for an admin: list, replay, discard."""


def _letter_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--system", help="a partner's name (where the letter was parked)"),
            click.option("--stage", type=click.Choice(STAGES)),
            click.option("--reason", help="a part of the reason (any case)"),
            click.option("--since", type=IsoTime(), help="parked at or after this time"),
            click.option("--until", type=IsoTime(), help="parked before this time"),
            click.option("--referral-id", help="the dead letters of one referral"),
        )
    ):
        command = option(command)
    return command


def _iso(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items()}


@dead_letters.command("list")
@admin_options
@click.option("--status", type=click.Choice(LETTER_STATUSES), default="parked", show_default=True)
@_letter_filters
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--all", "every", is_flag=True, help="every page, not only the first")
@click.option("--unmask", is_flag=True, help="payloads unmasked (operate token; audited)")
@click.option("--store", "from_store", is_flag=True, help="read the store (daemon down)")
def dead_letters_list(
    target: Target, every: bool, unmask: bool, from_store: bool, **filters: Any
) -> None:
    """Dead letters with their reasons, oldest first."""
    limit = filters.pop("limit")
    if from_store:
        from bridge import ops

        read = ops.list_dead_letters(
            target.settings(), limit=sys.maxsize if every else limit, **filters
        )
        page = _store_or_exit(read)
    else:
        query = {**_iso(filters), "limit": limit, "unmask": unmask or None}
        page = target.run(
            lambda api: api.pages("/api/v1/dead-letters", every=every, **query), store_hint=True
        )
    target.print(page, render.dead_letters)


@dead_letters.command("replay")
@admin_options
@click.argument("letter_ids", nargs=-1, type=int)
@click.option(
    "--mapping",
    type=click.Choice(("current", "original")),
    default="current",
    show_default=True,
    help="the mapping tables to replay with",
)
@click.option("--filter", "by_filter", is_flag=True, help="every parked one matching the filters")
@_letter_filters
@click.option("--yes", is_flag=True, help="with --filter and no filter: do not ask")
def dead_letters_replay(
    target: Target,
    letter_ids: tuple[int, ...],
    mapping: str,
    by_filter: bool,
    yes: bool,
    **filters: Any,
) -> None:
    """Replay dead letters once their cause is fixed: by id, or (`--filter`) every one
    that matches, as a job whose progress is shown until it ends."""
    given = {k: v for k, v in _iso(filters).items() if v is not None}
    if by_filter == bool(letter_ids):
        raise click.UsageError("give dead letter ids, or --filter with filter options")
    if given and not by_filter:
        raise click.UsageError(f"{', '.join(given)}: only with --filter")
    if not letter_ids:
        if not given and not yes:
            click.confirm("no filter given: replay every parked dead letter?", abort=True)

        async def replay_matching(api: AdminClient) -> dict[str, Any]:
            job = await api.post(
                "/api/v1/dead-letters/replay", {"filter": given, "mapping": mapping}
            )
            return await follow_job(api, job, show=not target.as_json)

        job = target.run(replay_matching)
        target.print(job, render.job)
        if job["status"] == "failed" or job.get("failed"):
            sys.exit(EXIT_API)
        return
    _each(target, letter_ids, "replay", {"mapping": mapping}, lambda d: d.get("outcome", ""))


@dead_letters.command("discard")
@admin_options
@click.argument("letter_ids", nargs=-1, type=int, required=True)
@click.option("--reason", help="why (kept with the dead letter)")
def dead_letters_discard(target: Target, letter_ids: tuple[int, ...], reason: str | None) -> None:
    """Mark dead letters discarded: they will not be replayed."""
    _each(target, letter_ids, "discard", {"reason": reason}, lambda d: d.get("status", ""))


def _each(
    target: Target,
    letter_ids: tuple[int, ...],
    verb: str,
    body: dict[str, Any],
    summary: Callable[[dict[str, Any]], str],
) -> None:
    """POST `/api/v1/dead-letters/{id}/<verb>` for each id in turn; one that fails is
    said on stderr and the others still go; exits 1 if any failed."""

    async def every(api: AdminClient) -> list[tuple[int, Any, ApiError | None]]:
        results: list[tuple[int, Any, ApiError | None]] = []
        for letter_id in letter_ids:
            try:
                answer = await api.post(f"/api/v1/dead-letters/{letter_id}/{verb}", body)
                results.append((letter_id, answer, None))
            except ApiError as exc:
                results.append((letter_id, None, exc))
        return results

    results = target.run(every)
    if target.as_json:
        docs = [answer if exc is None else {"id": i, "problem": _problem(exc)}
                for i, answer, exc in results]  # fmt: skip
        click.echo(json.dumps(docs, ensure_ascii=False, indent=2))
    for letter_id, answer, exc in results:
        if exc is not None:
            click.echo(f"{letter_id}: {exc.title}: {exc.detail or ''}".rstrip(": "), err=True)
        elif not target.as_json:
            click.echo(f"{letter_id}: {summary(answer)}")
    if any(exc is not None for _, _, exc in results):
        sys.exit(EXIT_API)


def _problem(exc: ApiError) -> dict[str, Any]:
    return {"status": exc.status, "title": exc.title, "detail": exc.detail}


@click.command()
@admin_options
@click.option("--dry-run", is_flag=True, help="report what would be re-published, change nothing")
def reconcile(target: Target, dry_run: bool) -> None:
    """Re-read this node's sides now; shows its progress, then the report."""

    async def run(api: AdminClient) -> dict[str, Any]:
        started = await api.post("/api/v1/reconciliations", {"dry_run": dry_run})
        return await follow_reconciliation(api, started, show=not target.as_json)

    finished = target.run(run)
    target.print(finished, render.reconciliation)
    if finished["status"] == "failed":
        sys.exit(EXIT_API)
