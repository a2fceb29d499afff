"""A stand-in for the `/api/v1` routes not yet served on this branch, for the CLI's
tests: an aiohttp server on port 0 in front of a real admin node (`adminkit`).

Paths under a prefix of `faked` are answered here, in the shapes of
/work/briefs/api-contract.md, from the node's real store (so the tests can check the
store's truth whichever server answered); every other request is passed to the real
admin server as it is (`/api/v1/audit`, `/readyz`, 401s). When a route group is served
for real, leave it out of `faked` and the same tests run against it.

`Scripted` answers jobs and reconciliations from a script (running, then done), for the
progress tests: those are unit tests of the client, whatever the node serves.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adminkit import OPERATE, READ, Admin
from aiohttp import web

from bridge.admin.masking import masked
from bridge.store import DeadLetterRow, ReferralRow

FAKED_DEFAULT: tuple[str, ...] = ()


def problem(status: int, title: str, detail: str | None = None) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


def _caller(request: web.Request, *, operate: bool = False) -> web.Response | None:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token not in (READ, OPERATE):
        return problem(401, "unauthorized", "the token is not one this node knows")
    if operate and token != OPERATE:
        return problem(403, "forbidden", "this call needs an operate token")
    return None


def letter_out(row: DeadLetterRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "system": row.system,
        "stage": row.stage,
        "reason": row.reason,
        "field": row.field,
        "referral_id": row.referral_id,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "mapping": None,
        "payload": masked(row.payload),
    }


def referral_summary(row: ReferralRow) -> dict[str, Any]:
    target = "12351" if row.origin_system == "12345" else "12345"
    numbers = {row.origin_system: row.ids.get(row.origin_system, "")}
    numbers.update(row.numbers)
    return {
        "referral_id": row.referral_id,
        "direction": f"{row.origin_system}-{target}",
        "origin": row.origin_system,
        "state": row.state,
        "ids": row.ids,
        "numbers": numbers,
        "early_warning": row.early_warning,
        "priority": None,
        "district_code": None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
        "sla": [],
        "parked": 0,
    }


@dataclass
class Scripted:
    """Jobs and reconciliations that report `steps` states, one per GET, then stay at
    the last; what the client sent is kept in `posted`."""

    job_steps: list[dict[str, Any]] = field(default_factory=list)
    run_steps: list[dict[str, Any]] = field(default_factory=list)
    posted: list[tuple[str, Any]] = field(default_factory=list)
    gets: dict[str, int] = field(default_factory=dict)

    def step(self, kind: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
        n = self.gets[kind] = self.gets.get(kind, 0) + 1
        return steps[min(n, len(steps)) - 1]


class FakeApi:
    """The routes of `faked` answered from `admin`'s store (see the module docstring)."""

    def __init__(self, admin: Admin, faked: Iterable[str], scripted: Scripted | None) -> None:
        self.admin, self.faked, self.scripted = admin, tuple(faked), scripted
        self.store = admin.node.store

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self.scripted is not None and path.startswith(
            ("/api/v1/jobs", "/api/v1/reconciliations", "/api/v1/dead-letters/replay")
        ):
            return await self._scripted(request)
        if not path.startswith(self.faked):
            return await self._proxy(request)
        refused = _caller(request, operate=request.method == "POST")
        if refused is not None:
            return refused
        parts = path.removeprefix("/api/v1/").split("/")
        q = request.query
        if parts == ["status"]:
            return web.json_response(await self._status())
        if parts == ["referrals"]:
            rows = await self.store.list_referrals(state=q.get("state"), limit=500)
            items = [referral_summary(r) for r in rows]
            items = [i for i in items if q.get("direction") in (None, i["direction"])]
            return web.json_response({"items": items, "next_cursor": None})
        if parts[0] == "referrals":
            return await self._referral(parts[1])
        if parts == ["dead-letters"]:
            return await self._dead_letters(q)
        if parts[0] == "dead-letters" and request.method == "POST":
            return await self._act(int(parts[1]), parts[2], await request.json())
        return problem(404, "not found", f"no route {path} in the fake")

    async def _status(self) -> dict[str, Any]:
        stats, figures = await self.store.stats(), await self.store.figures()
        node = self.admin.node
        problems = [
            {"severity": "error", "what": f"feed {p.hotline.system}/{p.feed}", "detail": "failing"}
            for p in node.pollers
            if p.failing
        ]
        now = datetime.now(UTC)
        sides: dict[str, Any] = {s: {"paused": False, "feeds": [], "queue_depth": None}
                                 for s in node.sides}  # fmt: skip
        for p in node.pollers:
            lag = (now - p.last_success).total_seconds() if p.last_success else None
            sides[p.hotline.system]["feeds"].append(
                {
                    "feed": p.feed,
                    "last_success_at": p.last_success.isoformat() if p.last_success else None,
                    "lag_s": lag,
                    "failing": p.failing,
                    "last_error": p.last_error,
                }
            )
        by_reason = [{"system": s, "stage": g, "field": None, "count": n}
                     for (s, g), n in figures.parked.items()]  # fmt: skip
        return {
            "problems": problems,
            "node": {"node_id": node.node_id, "sides": list(node.sides), "uptime_s": 1.0},
            "sides": sides,
            "outbox": {"depth": stats["outbox_backlog"], "oldest_age_s": None},
            "dead_letters": {"parked": sum(figures.parked.values()), "by_reason": by_reason},
            "early_warnings_open": stats["early_warning"],
            "sla": {"at_risk": 0, "breached": 0},
            "last_reconciliation": None,
        }

    async def _referral(self, key: str) -> web.Response:
        rows = await self.store.list_referrals(limit=500)
        system, _, native = key.partition(":")
        for row in rows:
            if key == row.referral_id or native in (row.ids.get(system), row.numbers.get("12351")):
                detail = referral_summary(row)
                timeline = await self.store.timeline(row.referral_id)
                detail["native_status"] = {}
                detail["snapshot"] = masked(row.last_snapshot or {})
                detail["timeline"] = [
                    {"at": e.at.isoformat(), "system": e.system, "kind": e.kind,
                     "outcome": e.detail.get("outcome"), "attempt": None, "mapping": None,
                     "detail": e.detail}
                    for e in timeline
                ]  # fmt: skip
                detail["dead_letters"] = []
                return web.json_response(detail)
        return problem(404, "not found", f"no referral {key}")

    async def _dead_letters(self, q: Any) -> web.Response:
        rows = await self.store.list_dead_letters(
            status=q.get("status", "parked"),
            system=q.get("system"),
            stage=q.get("stage"),
            referral_id=q.get("referral_id"),
            limit=500,
        )
        reason = q.get("reason", "").lower()
        items = [letter_out(r) for r in rows if reason in r.reason.lower()]
        return web.json_response({"items": items, "next_cursor": None})

    async def _act(self, letter_id: int, verb: str, body: Any) -> web.Response:
        row = await self.store.get_dead_letter(letter_id)
        if row is None:
            return problem(404, "not found", f"no dead letter {letter_id}")
        if verb == "replay":
            if row.status != "parked":
                return problem(409, "conflict", f"dead letter {letter_id} is {row.status}")
            await self.store.set_dead_letter_status(letter_id, "replayed")
            return web.json_response({"id": letter_id, "status": "replayed", "outcome": "queued"})
        updated = await self.store.set_dead_letter_status(letter_id, "discarded")
        assert updated is not None
        return web.json_response(letter_out(updated))

    async def _scripted(self, request: web.Request) -> web.Response:
        assert self.scripted is not None
        refused = _caller(request, operate=request.method == "POST")
        if refused is not None:
            return refused
        kind = "job" if "reconciliations" not in request.path else "run"
        steps = self.scripted.job_steps if kind == "job" else self.scripted.run_steps
        if request.method == "POST":
            self.scripted.posted.append((request.path, await request.json()))
            return web.json_response(steps[0], status=202)
        return web.json_response(self.scripted.step(kind, steps))

    async def _proxy(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with self.admin.http.request(
            request.method,
            self.admin.url + request.path_qs,
            headers=headers,
            data=await request.read() or None,
        ) as response:
            return web.Response(
                body=await response.read(),
                status=response.status,
                content_type=response.content_type,
            )


@contextlib.asynccontextmanager
async def fake_api(
    admin: Admin, faked: Iterable[str] = FAKED_DEFAULT, scripted: Scripted | None = None
) -> AsyncIterator[str]:
    """Serve a `FakeApi` on 127.0.0.1, port 0; yields its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", FakeApi(admin, faked, scripted).handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
