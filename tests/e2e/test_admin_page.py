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

from bridge.admin.auth import fingerprint
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




# one browser for the module (launching Chromium costs seconds), so one event loop
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.one_store]


@dataclass
class Seeded:
    admin: Admin
    letter_id: int
    events: int


@pytest_asyncio.fixture(loop_scope="module")
async def seeded(tmp_path: Path) -> AsyncIterator[Seeded]:
    """A node's admin server with one referral (12351 → 12345), one parked dead letter
    and a failing 12345 feed; its store on SQLite or PostgreSQL (`e2e_store`)."""
    async with admin_node(tmp_path, store_url=STORES.url(tmp_path, "bridge.db")) as admin:
        async with admin.node.store.begin() as tx:
            await tx.upsert_referral(
                ReferralRow(
                    referral_id=REFERRAL,
                    origin_system="12351",
                    ids={"12351": CASE_ID, "12345": ORDER_NO},
                    state="delivered",
                    numbers={"12351": CASE_NO},
                )
            )
            await tx.add_event(REFERRAL, "12351", "intake", {"source_version": 1})
            await tx.record_action(
                ActionRow(REFERRAL, "12345", "create:1", "create_order", "applied", {})
            )
            letter_id = await tx.park(
                DeadLetterIn(
                    system="12345",
                    stage="transport",
                    reason=REASON,
                    payload={  # a message as the transport parked it: replayable as it is
                        "message_id": "m-1",
                        "routing_key": "hotline-bridge.to12345.shard0",
                        "body": "{}",
                    },
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
