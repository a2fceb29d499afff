"""How the CLI shows what the admin API answers: rich tables that fit the terminal
(columns wrap, ids fold, never cut), problems first and in red. Each function takes
the decoded JSON of one answer; `--json` bypasses all of this."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STORE_NOTE = "(read from the store; the daemon did not answer)"


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr), as wide as the terminal (80 when not one)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def when(value: str | None) -> str:
    """An ISO 8601 time as `YYYY-MM-DD HH:MM` (the API answers in UTC)."""
    if not value:
        return "-"
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    return at.strftime("%Y-%m-%d %H:%M")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


_SHARE = {"reason": 3, "referral": 2, "numbers": 2, "field": 1, "failing": 2, "value": 2}

"""Columns of free text and long ids share what the short ones leave, in these ratios
(the short ones keep their width, so they are not folded first)."""


class _Rows:
    """A table's columns and rows, printed to fit the terminal: long ids and text fold
    (never cut), the free-text columns share the width, and the columns of `drop` are
    left out, in that order, while even folded the table would not fit."""

    WORD = 12
    """Longer words (ids, numbers) may fold; shorter ones should stay whole."""

    def __init__(self, *columns: str, title: str | None = None, drop: tuple[str, ...] = ()):
        self.columns, self.title, self.drop = columns, title, drop
        self.rows: list[tuple[str, ...]] = []

    def add(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self, out: Console) -> None:
        keep = list(self.columns)
        for name in self.drop:
            if self._width(keep, self.WORD) <= out.width:
                break
            keep.remove(name)
        out.print(self._table(keep, expand=self._width(keep, None) > out.width))

    def _cells(self, name: str) -> list[str]:
        at = self.columns.index(name)
        return [name] + [Text.from_markup(row[at]).plain for row in self.rows]

    def _width(self, keep: list[str], word: int | None) -> int:
        """Columns and separators, each column as wide as its longest word (`word`: at
        most that) or, `word` None, its longest line."""
        total = 0
        for name in keep:
            cells = self._cells(name)
            if word is None:
                total += max(len(line) for cell in cells for line in cell.splitlines() or [""])
            else:
                total += max(min(len(w), word) for cell in cells for w in cell.split() or [""])
        return total + 3 * len(keep)

    def _table(self, keep: list[str], *, expand: bool) -> Table:
        table = Table(title=self.title, title_justify="left", expand=expand, show_edge=False)
        for name in keep:
            table.add_column(name, overflow="fold", ratio=_SHARE.get(name) if expand else None)
        at = [self.columns.index(name) for name in keep]
        for row in self.rows:
            table.add_row(*(row[i] for i in at))
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
        feeds = _Rows(
            "side", "paused", "feed", "last success", "lag", "failing", "queue",
            drop=("queue", "last success", "paused"),
        )  # fmt: skip
        for system, side in doc["sides"].items():
            for feed in side.get("feeds") or [{}]:
                feeds.add(
                    system,
                    "yes" if side.get("paused") else "no",
                    feed.get("feed", "-"),
                    when(feed.get("last_success_at")),
                    age(feed.get("lag_s")),
                    _failing(feed),
                    "-" if side.get("queue_depth") is None else str(side["queue_depth"]),
                )
        feeds.print(out)
    outbox, letters = doc.get("outbox") or {}, doc.get("dead_letters") or {}
    sla = doc.get("sla")
    figures = _Rows("figure", "value")
    figures.add("outbox depth", str(outbox.get("depth", "-")))
    figures.add("outbox oldest", age(outbox.get("oldest_age_s")))
    figures.add("dead letters parked", str(letters.get("parked", "-")))
    figures.add("early warnings open", str(doc.get("early_warnings_open", "-")))
    if sla is not None:
        figures.add("SLA at risk", str(sla.get("at_risk", "-")))
        figures.add("SLA breached", str(sla.get("breached", "-")))
    for state, count in sorted(((doc.get("referrals") or {}).get("by_state") or {}).items()):
        figures.add(f"referrals {state}", str(count))
    figures.print(out)
    if letters.get("by_reason"):
        reasons = _Rows("system", "stage", "field", "parked", title="dead letters by reason")
        for row in letters["by_reason"]:
            reasons.add(row["system"], row["stage"], row.get("field") or "-", str(row["count"]))
        reasons.print(out)
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
    table = _Rows(
        "referral", "direction", "state", "numbers", "priority", "district", "updated",
        drop=("district", "priority", "updated", "numbers", "direction"),
    )  # fmt: skip
    for item in page["items"]:
        flags = [" EW" if item.get("early_warning") else ""]
        if item.get("parked"):
            flags.append(f" parked {item['parked']}")
        table.add(
            item["referral_id"],
            item["direction"],
            item["state"] + "".join(flags),
            "\n".join(f"{s}: {n}" for s, n in sorted((item.get("numbers") or {}).items())),
            item.get("priority") or "-",
            item.get("district_code") or "-",
            when(item.get("updated_at")),
        )
    table.print(out)
    _more(out, page, "referrals")


def referral(out: Console, doc: dict[str, Any]) -> None:
    """`GET /api/v1/referrals/{id}`: both sides' ids and statuses, deadlines, timeline."""
    out.print(f"[bold]{doc['referral_id']}[/bold]  {doc['direction']}  state {doc['state']}")
    sides = _Rows("system", "id", "number", "native status", drop=("native status",))
    for system in sorted(set(doc.get("ids") or {}) | set(doc.get("numbers") or {})):
        sides.add(
            system,
            (doc.get("ids") or {}).get(system, "-"),
            (doc.get("numbers") or {}).get(system, "-"),
            str((doc.get("native_status") or {}).get(system, "-")),
        )
    sides.print(out)
    if doc.get("sla"):
        sla = _Rows("deadline", "system", "due", "state")
        for row in doc["sla"]:
            sla.add(row["kind"], row["system"], when(row["due_at"]), row["state"])
        sla.print(out)
    timeline = _Rows(
        "at", "system", "kind", "outcome", "attempt", "mapping",
        title="timeline", drop=("mapping", "attempt"),
    )  # fmt: skip
    for event in doc.get("timeline") or []:
        timeline.add(
            when(event["at"]),
            event["system"],
            event["kind"],
            event.get("outcome") or "-",
            "-" if event.get("attempt") is None else str(event["attempt"]),
            (event.get("mapping") or "-")[:12],
        )
    timeline.print(out)
    if doc.get("dead_letters"):
        dead_letters(out, {"items": doc["dead_letters"], "next_cursor": None})


def dead_letters(out: Console, page: dict[str, Any]) -> None:
    if page.get("source") == "store":
        out.print(STORE_NOTE, style="yellow")
    table = _Rows(
        "id", "status", "system", "stage", "field", "reason", "referral", "created",
        drop=("status", "created", "referral", "field"),
    )  # fmt: skip
    for item in page["items"]:
        table.add(
            str(item["id"]),
            item["status"],
            item["system"],
            item["stage"],
            item.get("field") or "-",
            item["reason"],
            item.get("referral_id") or "-",
            when(item.get("created_at")),
        )
    table.print(out)
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
    table = _Rows("key", "value", title=title)
    for key, value in report.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add(str(key), shown)
    table.print(out)
