"""How the CLI shows what the admin API answers: rich tables that fit the terminal
(columns wrap, ids fold, never cut), problems first and in red. Each function takes
the decoded JSON of one answer; `--json` bypasses all of this."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

STORE_NOTE = "(read from the store; the daemon did not answer)"


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr), as wide as the terminal (80 when not one)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def when(value: str | None) -> str:
    """An ISO 8601 time as `YYYY-MM-DD HH:MM:SS` in UTC with its offset dropped."""
    if not value:
        return "-"
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    return at.strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", expand=False, show_edge=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def status(out: Console, doc: dict[str, Any]) -> None:
    """`GET /api/v1/status` (or the store's reading of it): problems, then the rest."""
    if doc.get("source") == "store":
        out.print(STORE_NOTE, style="yellow")
    problems = doc.get("problems") or []
    if problems:
        out.print(f"PROBLEMS ({len(problems)})", style="bold red")
        for problem in problems:
            out.print(
                f"  {problem['severity']}: {problem['what']}: {problem.get('detail') or ''}",
                style="red",
            )
    else:
        out.print("no problems", style="green")
    node = doc.get("node")
    if node:
        out.print(
            f"node {node['node_id']}  sides {', '.join(node['sides'])}  "
            f"up {age(node.get('uptime_s'))}"
        )
    if doc.get("sides"):
        feeds = _table("side", "paused", "feed", "last success", "lag", "failing", "queue")
        for system, side in doc["sides"].items():
            for feed in side.get("feeds") or [{}]:
                feeds.add_row(
                    system,
                    "yes" if side.get("paused") else "no",
                    feed.get("feed", "-"),
                    when(feed.get("last_success_at")),
                    age(feed.get("lag_s")),
                    _failing(feed),
                    "-" if side.get("queue_depth") is None else str(side["queue_depth"]),
                )
        out.print(feeds)
    outbox, letters = doc.get("outbox") or {}, doc.get("dead_letters") or {}
    sla = doc.get("sla")
    figures = _table("figure", "value")
    figures.add_row("outbox depth", str(outbox.get("depth", "-")))
    figures.add_row("outbox oldest", age(outbox.get("oldest_age_s")))
    figures.add_row("dead letters parked", str(letters.get("parked", "-")))
    figures.add_row("early warnings open", str(doc.get("early_warnings_open", "-")))
    if sla is not None:
        figures.add_row("SLA at risk", str(sla.get("at_risk", "-")))
        figures.add_row("SLA breached", str(sla.get("breached", "-")))
    for state, count in sorted(((doc.get("referrals") or {}).get("by_state") or {}).items()):
        figures.add_row(f"referrals {state}", str(count))
    out.print(figures)
    if letters.get("by_reason"):
        reasons = _table("system", "stage", "field", "parked", title="dead letters by reason")
        for row in letters["by_reason"]:
            reasons.add_row(row["system"], row["stage"], row.get("field") or "-", str(row["count"]))
        out.print(reasons)
    run = doc.get("last_reconciliation")
    if run:
        out.print(f"last reconciliation: {_run_line(run)}")


def _failing(feed: dict[str, Any]) -> str:
    if not feed.get("failing"):
        return "no"
    return f"[red]yes: {feed.get('last_error') or '?'}[/red]"


def _run_line(run: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted((run.get("counts") or {}).items()))
    dry = " (dry run)" if run.get("dry_run") else ""
    return (
        f"#{run['id']} {run['status']}{dry}, started {when(run.get('started_at'))}, "
        f"finished {when(run.get('finished_at'))}" + (f": {counts}" if counts else "")
    )


def referrals(out: Console, page: dict[str, Any]) -> None:
    table = _table("referral", "direction", "state", "numbers", "priority", "district", "updated")
    for item in page["items"]:
        flags = [" EW" if item.get("early_warning") else ""]
        if item.get("parked"):
            flags.append(f" parked {item['parked']}")
        table.add_row(
            item["referral_id"],
            item["direction"],
            item["state"] + "".join(flags),
            "\n".join(f"{s}: {n}" for s, n in sorted((item.get("numbers") or {}).items())),
            item.get("priority") or "-",
            item.get("district_code") or "-",
            when(item.get("updated_at")),
        )
    out.print(table)
    _more(out, page, "referrals")


def referral(out: Console, doc: dict[str, Any]) -> None:
    """`GET /api/v1/referrals/{id}`: both sides' ids and statuses, deadlines, timeline."""
    out.print(f"[bold]{doc['referral_id']}[/bold]  {doc['direction']}  state {doc['state']}")
    sides = _table("system", "id", "number", "native status")
    for system in sorted(set(doc.get("ids") or {}) | set(doc.get("numbers") or {})):
        sides.add_row(
            system,
            (doc.get("ids") or {}).get(system, "-"),
            (doc.get("numbers") or {}).get(system, "-"),
            str((doc.get("native_status") or {}).get(system, "-")),
        )
    out.print(sides)
    if doc.get("sla"):
        sla = _table("deadline", "system", "due", "state")
        for row in doc["sla"]:
            sla.add_row(row["kind"], row["system"], when(row["due_at"]), row["state"])
        out.print(sla)
    timeline = _table("at", "system", "kind", "outcome", "attempt", "mapping", title="timeline")
    for event in doc.get("timeline") or []:
        timeline.add_row(
            when(event["at"]),
            event["system"],
            event["kind"],
            event.get("outcome") or "-",
            "-" if event.get("attempt") is None else str(event["attempt"]),
            (event.get("mapping") or "-")[:12],
        )
    out.print(timeline)
    if doc.get("dead_letters"):
        dead_letters(out, {"items": doc["dead_letters"], "next_cursor": None})


def dead_letters(out: Console, page: dict[str, Any]) -> None:
    if page.get("source") == "store":
        out.print(STORE_NOTE, style="yellow")
    table = _table("id", "status", "system", "stage", "field", "reason", "referral", "created")
    for item in page["items"]:
        table.add_row(
            str(item["id"]),
            item["status"],
            item["system"],
            item["stage"],
            item.get("field") or "-",
            item["reason"],
            item.get("referral_id") or "-",
            when(item.get("created_at")),
        )
    out.print(table)
    _more(out, page, "dead letters")


def _more(out: Console, page: dict[str, Any], what: str) -> None:
    if not page["items"]:
        out.print(f"no {what}")
    elif page.get("next_cursor"):
        out.print(f"(more {what}: --all lists every page)", style="dim")


def job(out: Console, doc: dict[str, Any]) -> None:
    style = "red" if doc["status"] == "failed" or doc.get("failed") else "green"
    total = "?" if doc.get("total") is None else doc["total"]
    out.print(
        f"job {doc['id']} {doc['status']}: {doc['done']} of {total} done, "
        f"{doc.get('failed', 0)} failed",
        style=style,
    )
    _report(out, doc.get("result") or {}, "result")


def reconciliation(out: Console, run: dict[str, Any]) -> None:
    out.print(f"reconciliation {_run_line(run)}", style="red" if run["status"] == "failed" else "")
    _report(out, run.get("report") or {}, "report")


def _report(out: Console, report: dict[str, Any], title: str) -> None:
    """A flat report as a two-column table; nested values shown as compact JSON."""
    if not report:
        return
    table = _table("key", "value", title=title)
    for key, value in report.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(str(key), shown)
    out.print(table)
