"""The admin page at `/` in a real headless browser: Debian's Chromium driven by
Playwright, against a node's admin server (`tests.unit.adminkit`: real store, real
supervisor, fakes of the broker and hotlines) over real HTTP.

The node is seeded with a referral that came from 12351 and went to 12345, a parked dead
letter whose reason holds hostile markup, and a failing feed poller (a problem)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import pytest_asyncio
from harness import STORES
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    async_playwright,
    expect,
)
from pydantic import BaseModel, ConfigDict, RootModel

from bridge.admin import server
from bridge.admin.api import ApiProblem, Call, PageQuery, Routes, not_found
from bridge.admin.auth import fingerprint
from bridge.app import PARTNER
from bridge.store import ActionRow, DeadLetterIn, ReferralRow
from tests.unit.adminkit import OPERATE, READ, Admin, admin_node

CHROMIUM = Path(os.environ.get("HB_TEST_CHROMIUM", "/usr/bin/chromium"))
HOSTILE = "<img src=x onerror=alert(1)>"
ORDER_NO = "BJ12345-20261129-004211"
CASE_NO = "12351-2026-0001234"
CASE_ID = "5f0c6a52-8e1d-4c1e-9d55-3a7f0b2c9e41"
REFERRAL = f"12351:{CASE_NO}"
SEEDED_KINDS = ["intake", "create_order", "parked"]  # the timeline of the seeded referral
REASON = f"district_code {HOSTILE} is not one of the 16 districts 12345 takes"


# --- STAND-IN ROUTES ----------------------------------------------------------------------
# Stand-ins for GET /api/v1/status, GET /api/v1/referrals/{referral_id},
# GET /api/v1/dead-letters and POST /api/v1/dead-letters/{letter_id}/replay|discard, which
# other branches of issue 8 bring (contract: /api/v1 contract, issue 8). They answer the
# contract's shapes from the real store, through the real framework (tokens, roles,
# problem+json, audit); the replay stand-in only marks the letter `replayed`. One is
# installed only for a route the server does not have yet, so the real routes win once
# merged; then delete this block and `_with_stand_ins` (the tests do not change).

stand_ins = Routes()


class Doc(RootModel[dict[str, Any]]):
    """Whatever the stand-in answers (the real routes have the real models)."""


class LettersQuery(PageQuery):
    status: str = "parked"


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mapping: Literal["current", "original"] = "current"


class DiscardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


def _letter(row: Any) -> dict[str, Any]:
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
        "payload": {},
    }


@stand_ins.get("/api/v1/status", response=Doc)
async def stand_in_status(call: Call[None, None]) -> Doc:
    """Stand-in: the node's status, problems first."""
    node = call.state.node
    figures = await node.store.figures()
    problems = [
        {
            "severity": "error",
            "what": f"feed {p.hotline.system}/{p.feed} failing",
            "detail": f"the last read failed: {p.last_error}",
        }
        for p in node.pollers
        if p.failing
    ]
    sides = {
        system: {
            "paused": system in node.paused,
            "queue_depth": None,
            "feeds": [
                {
                    "feed": p.feed,
                    "failing": p.failing,
                    "last_error": p.last_error,
                    "last_success_at": p.last_success.isoformat() if p.last_success else None,
                    "lag_s": 3.0,
                }
                for p in node.pollers
                if p.hotline.system == system
            ],
        }
        for system in node.sides
    }
    return Doc(
        {
            "problems": problems,
            "node": {"node_id": node.node_id, "sides": list(node.sides), "uptime_s": 1.0},
            "sides": sides,
            "outbox": {"depth": figures.outbox_depth, "oldest_age_s": None},
            "dead_letters": {
                "parked": sum(figures.parked.values()),
                "by_reason": [
                    {"system": s, "stage": st, "field": None, "count": n}
                    for (s, st), n in figures.parked.items()
                ],
            },
            "early_warnings_open": 0,
            "sla": {"at_risk": 0, "breached": 0},
            "last_reconciliation": None,
        }
    )


@stand_ins.get("/api/v1/referrals/{referral_id}", response=Doc)
async def stand_in_referral(call: Call[None, None]) -> Doc:
    """Stand-in: one referral by its id or `<system>:<number>` of either side."""
    store = call.state.node.store
    wanted = call.params["referral_id"]
    row = await store.get_referral(wanted)
    if row is None:
        system, _, number = wanted.partition(":")
        for candidate in await store.list_referrals(limit=500):
            numbers = {candidate.ids.get(system)}
            if system == "12351":
                numbers.add(candidate.case_no)
            if number in numbers:
                row = candidate
    if row is None:
        raise not_found(f"referral {wanted}")
    events = await store.timeline(row.referral_id)
    letters = await store.list_dead_letters(referral_id=row.referral_id)
    return Doc(
        {
            "referral_id": row.referral_id,
            "origin": row.origin_system,
            "direction": f"{row.origin_system}-{PARTNER[row.origin_system]}",
            "state": row.state,
            "ids": row.ids,
            "numbers": {"12345": row.ids.get("12345"), "12351": row.case_no},
            "native_status": (row.last_snapshot or {}).get("native_status", {}),
            "early_warning": row.early_warning,
            "priority": None,
            "district_code": None,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None,
            "sla": [],
            "parked": sum(1 for d in letters if d.status == "parked"),
            "timeline": [
                {
                    "at": e.at.isoformat(),
                    "system": e.system,
                    "kind": e.kind,
                    "outcome": e.detail.get("outcome"),
                    "attempt": e.detail.get("attempt"),
                    "mapping": e.detail.get("mapping"),
                    "detail": e.detail,
                }
                for e in events
            ],
            "dead_letters": [_letter(d) for d in letters],
        }
    )


@stand_ins.get("/api/v1/dead-letters", response=Doc, query=LettersQuery)
async def stand_in_dead_letters(call: Call[LettersQuery, None]) -> Doc:
    """Stand-in: dead letters by status (no pagination)."""
    rows = await call.state.node.store.list_dead_letters(status=call.query.status)
    return Doc({"items": [_letter(r) for r in rows], "next_cursor": None})


async def _set_status(call: Call[Any, Any], status: str) -> Any:
    store = call.state.node.store
    letter_id = int(call.params["letter_id"])
    letter = await store.get_dead_letter(letter_id)
    if letter is None:
        raise not_found(f"dead letter {letter_id}")
    if letter.status != "parked":
        raise ApiProblem(409, "conflict", f"dead letter {letter_id} is {letter.status}")
    return await store.set_dead_letter_status(letter_id, status)


@stand_ins.post(
    "/api/v1/dead-letters/{letter_id}/replay", response=Doc, body=ReplayIn, role="operate"
)
async def stand_in_replay(call: Call[None, ReplayIn]) -> Doc:
    """Stand-in: replay one dead letter (marked replayed only)."""
    row = await _set_status(call, "replayed")
    return Doc({"id": row.id, "status": row.status, "outcome": "requeued"})


@stand_ins.post(
    "/api/v1/dead-letters/{letter_id}/discard", response=Doc, body=DiscardIn, role="operate"
)
async def stand_in_discard(call: Call[None, DiscardIn]) -> Doc:
    """Stand-in: discard one dead letter."""
    return Doc(_letter(await _set_status(call, "discarded")))


def _with_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the stand-ins of the routes the server does not have yet."""
    have = {(r.method, r.path) for group in server.ROUTES for r in group.routes}
    missing = Routes()
    missing.routes = [r for r in stand_ins.routes if (r.method, r.path) not in have]
    monkeypatch.setattr(server, "ROUTES", (*server.ROUTES, missing))


# --- END OF STAND-IN ROUTES ---------------------------------------------------------------


# one browser for the module (launching Chromium costs seconds), so one event loop
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.one_store]


@dataclass
class Seeded:
    admin: Admin
    letter_id: int
    events: int


@pytest_asyncio.fixture(loop_scope="module")
async def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Seeded]:
    """A node's admin server with one referral (12351 → 12345), one parked dead letter
    and a failing 12345 feed; its store on SQLite or PostgreSQL (`e2e_store`)."""
    _with_stand_ins(monkeypatch)
    async with admin_node(tmp_path, store_url=STORES.url(tmp_path, "bridge.db")) as admin:
        async with admin.node.store.begin() as tx:
            await tx.upsert_referral(
                ReferralRow(
                    referral_id=REFERRAL,
                    origin_system="12351",
                    ids={"12351": CASE_ID, "12345": ORDER_NO},
                    state="delivered",
                    case_no=CASE_NO,
                )
            )
            await tx.add_event(REFERRAL, "12351", "intake", {"source_version": 1})
            await tx.record_action(
                ActionRow(REFERRAL, "12345", "create:1", "create_order", "applied", {})
            )
            letter_id = await tx.park(
                DeadLetterIn(
                    system="12345",
                    stage="apply",
                    reason=REASON,
                    payload={"snapshot": {}},
                    referral_id=REFERRAL,
                    field="district_code",
                )
            )
        poller = admin.node.pollers[0]
        poller.failing, poller.last_error = True, "ServerDisconnectedError"
        events = len(await admin.node.store.timeline(REFERRAL))
        yield Seeded(admin, letter_id, events)


@dataclass
class Watched:
    """A page and what it did that a test may not want: console errors, dialogs."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the admin page tests need Chromium at {CHROMIUM}: apt-get install chromium "
            "(scripts/test installs it when run as root), or set HB_TEST_CHROMIUM"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context()
    watched = Watched(await context.new_page())

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    async def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(dialog.message)
        await dialog.dismiss()

    watched.page.on("console", on_console)
    watched.page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    watched.page.on("dialog", on_dialog)
    yield watched
    await context.close()


async def log_in(page: Page, token: str) -> None:
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#main")).to_be_visible()


async def open_page(watched: Watched, admin: Admin, token: str) -> Page:
    page = watched.page
    await page.goto(admin.url + "/")
    await log_in(page, token)
    await expect(page.locator("#refreshed")).to_contain_text("refreshed at")
    return page


def parked(page: Page) -> Locator:
    """The figure of parked dead letters in the backlog."""
    return page.locator("#backlog dt:text-is('dead letters parked') + dd")


def refused(errors: list[str], status: int) -> list[str]:
    """The console errors other than Chromium's note of a fetch the API refused with
    `status` (which a test provokes on purpose)."""
    note = f"the server responded with a status of {status}"
    return [e for e in errors if note not in e]


async def test_the_page_loads_without_a_token_and_asks_for_one(
    seeded: Seeded, watched: Watched
) -> None:
    admin, page = seeded.admin, watched.page
    async with admin.http.get(admin.url + "/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    for asset in ("app.js", "style.css", "favicon.svg"):
        async with admin.http.get(f"{admin.url}/page/{asset}") as resp:
            assert resp.status == 200, asset
    for unknown in ("index.html", "page.py", "nope.js"):
        async with admin.http.get(f"{admin.url}/page/{unknown}") as resp:
            assert resp.status == 404, unknown

    await page.goto(admin.url + "/")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#token")).to_be_focused()
    await expect(page.locator("#main")).to_be_hidden()
    assert watched.errors == [] and watched.dialogs == []


async def test_a_wrong_token_is_refused_on_the_page(seeded: Seeded, watched: Watched) -> None:
    page = watched.page
    await page.goto(seeded.admin.url + "/")
    await page.fill("#token", "not-a-token")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text(
        "401 unauthorized: the token is not one this node knows"
    )
    await expect(page.locator("#main")).to_be_hidden()
    assert await page.evaluate("sessionStorage.length") == 0
    assert refused(watched.errors, 401) == []


async def test_problems_come_first_in_red_then_the_figures(
    seeded: Seeded, watched: Watched
) -> None:
    page = await open_page(watched, seeded.admin, READ)
    first = page.locator("#main > section").first
    await expect(first.locator("h2")).to_have_text("Problems")
    # the failing feed is a problem (the wording is the status route's own)
    problem = first.locator("li.problem.error", has_text="dispatched")
    await expect(problem).to_have_count(1)
    await expect(problem).to_contain_text("12345")
    await expect(problem).to_contain_text("ServerDisconnectedError")
    assert await problem.evaluate("e => getComputedStyle(e).color") == "rgb(176, 0, 32)"
    sides = page.locator("#sides tbody tr")
    await expect(sides).to_have_count(2)
    await expect(sides.nth(0)).to_contain_text("failing: ServerDisconnectedError")
    await expect(sides.nth(1)).to_contain_text("ok")
    await expect(parked(page)).to_have_text("1")
    # the token sits in this tab's session storage only
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("Object.values(sessionStorage)") == [READ]
    assert READ not in page.url
    assert watched.errors == [] and watched.dialogs == []


async def test_a_referral_is_found_by_the_other_sides_number(
    seeded: Seeded, watched: Watched
) -> None:
    page = await open_page(watched, seeded.admin, READ)
    await page.fill("#search", f"12345:{ORDER_NO}")
    await page.click("#search-form button")
    sides = page.locator("#referral-sides tbody tr")
    await expect(sides).to_have_count(2)
    await expect(sides.nth(0)).to_contain_text(ORDER_NO)
    await expect(sides.nth(1)).to_contain_text(CASE_ID)
    await expect(sides.nth(1)).to_contain_text(CASE_NO)
    await expect(page.locator("#referral .summary")).to_contain_text(REFERRAL)
    timeline = page.locator("#timeline tbody tr")
    await expect(timeline.first).to_be_visible()
    kinds = await timeline.locator("td:nth-child(3)").all_text_contents()
    assert len(kinds) >= seeded.events
    assert [k for k in kinds if k in SEEDED_KINDS] == SEEDED_KINDS
    created = timeline.filter(has_text="create_order")
    await expect(created).to_contain_text("12345")
    await expect(created).to_contain_text("applied")

    await page.fill("#search", "12345:BJ12345-20260101-000000")
    await page.click("#search-form button")
    await expect(page.locator("#search-error")).to_contain_text("404 not found")
    await expect(page.locator("#referral")).to_be_empty()
    assert refused(watched.errors, 404) == [] and watched.dialogs == []


async def test_hostile_text_in_the_data_renders_as_text(seeded: Seeded, watched: Watched) -> None:
    page = await open_page(watched, seeded.admin, READ)
    reason = page.locator("#letters tbody td.reason")
    await expect(reason).to_have_text(REASON)
    await page.click("#letters button.link")  # the letter's referral
    await expect(page.locator("#referral td.reason")).to_have_text(REASON)
    assert await page.locator("img").count() == 0
    assert watched.dialogs == [] and watched.errors == []


async def test_replay_with_a_read_token_shows_the_403(seeded: Seeded, watched: Watched) -> None:
    page = await open_page(watched, seeded.admin, READ)
    row = page.locator(f"#letters tr[data-letter='{seeded.letter_id}']")
    await row.locator("button.replay").click()
    await expect(row.locator(".note")).to_have_text(
        "403 forbidden: this call needs an operate token"
    )
    await expect(row.locator("td.status")).to_have_text("parked")
    letter = await seeded.admin.node.store.get_dead_letter(seeded.letter_id)
    assert letter is not None and letter.status == "parked"
    assert refused(watched.errors, 403) == [] and watched.dialogs == []


async def test_replay_with_an_operate_token_replays_and_the_row_updates(
    seeded: Seeded, watched: Watched
) -> None:
    page = await open_page(watched, seeded.admin, OPERATE)
    row = page.locator(f"#letters tr[data-letter='{seeded.letter_id}']")
    await row.locator("button.replay").click()
    await expect(row.locator("td.status")).to_have_text("replayed")
    await expect(row.locator(".note")).to_have_text(re.compile(r"^replayed"))
    await expect(row.locator("button.replay")).to_be_disabled()
    letter = await seeded.admin.node.store.get_dead_letter(seeded.letter_id)
    assert letter is not None and letter.status == "replayed"
    (audit,) = await seeded.admin.node.store.list_audit()
    assert (audit.token, audit.method, audit.path, audit.status) == (
        fingerprint(OPERATE),
        "POST",
        f"/api/v1/dead-letters/{seeded.letter_id}/replay",
        200,
    )
    await expect(parked(page)).to_have_text("0")
    assert watched.errors == [] and watched.dialogs == []


async def test_discard_takes_a_second_click(seeded: Seeded, watched: Watched) -> None:
    page = await open_page(watched, seeded.admin, OPERATE)
    row = page.locator(f"#letters tr[data-letter='{seeded.letter_id}']")
    await row.locator("button.discard").click()
    await expect(row.locator("button.discard")).to_have_text("Confirm discard")
    letter = await seeded.admin.node.store.get_dead_letter(seeded.letter_id)
    assert letter is not None and letter.status == "parked"
    await row.locator("button.discard").click()
    await expect(row.locator("td.status")).to_have_text("discarded")
    letter = await seeded.admin.node.store.get_dead_letter(seeded.letter_id)
    assert letter is not None and letter.status == "discarded"
    assert watched.errors == [] and watched.dialogs == []


async def test_the_page_refreshes_every_ten_seconds(seeded: Seeded, watched: Watched) -> None:
    await watched.page.clock.install()
    page = await open_page(watched, seeded.admin, READ)
    await expect(page.locator("#letters tbody tr[data-letter]")).to_have_count(1)
    await seeded.admin.node.store.set_dead_letter_status(seeded.letter_id, "discarded")
    await page.clock.run_for(8_000)
    await expect(page.locator("#letters tbody tr[data-letter]")).to_have_count(1)
    await page.clock.run_for(3_000)
    await expect(page.locator("#letters tbody tr[data-letter]")).to_have_count(0)
    await expect(parked(page)).to_have_text("0")
    assert watched.errors == [] and watched.dialogs == []


async def test_an_api_failure_shows_in_the_page(seeded: Seeded, watched: Watched) -> None:
    """The node stops answering: the page says so where the figures were, not blank."""
    page = await open_page(watched, seeded.admin, READ)
    await page.route("**/api/v1/status", lambda route: route.abort())
    await page.click("#refresh")
    problem = page.locator("#problems li.problem.error")
    await expect(problem).to_contain_text("status unavailable")
    await expect(problem).to_contain_text("the node did not answer")
    await expect(page.locator("#refreshed")).to_contain_text("failed")
    await expect(page.locator("#letters tbody tr[data-letter]")).to_have_count(1)
