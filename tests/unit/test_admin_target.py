"""Directions in a union with two partners (12345 and 12385), read from the ledger's
target over real HTTP on SQLite and PostgreSQL: `GET /api/v1/referrals?direction=A-B`
selects exactly the referrals of `A` that go to `B` and pages them right, each summary
names its own direction, and `hotline_bridge_referrals` counts each direction apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from bridge.config import Settings
from bridge.partners import Deployment, Partner, PartnerKind
from bridge.store import ReferralRow
from tests.unit.adminkit import READ, T0, Admin, MovableClock, admin_node, store_url
from tests.unit.test_admin import families, sample


def _no_side(context: Any) -> Any:
    raise AssertionError("the admin node runs no side of 12385")


GUANGZHOU = PartnerKind(kind="test-12385", config_model=BaseModel, build_side=_no_side)
"""A third partner of the union, for its name only: nothing here runs it."""


def union_of_two() -> Deployment:
    """12351 with two partners: 12345 and 12385 (the union routes `*`)."""
    known = Settings().deployment(require_sides=False)
    partners = {**known.partners, "12385": Partner("12385", GUANGZHOU)}
    deployment = replace(known, partners=partners)
    assert deployment.routes()["12351"] == "*"
    return deployment


SEED: list[tuple[str, str | None]] = [
    ("12351:C1", "12345"),
    ("12351:C2", "12385"),
    ("12351:C3", "12345"),
    ("12351:C4", None),  # the ledger does not know where it goes
    ("12345:BJ1", None),  # 12345's referrals all go to the union
    ("12345:BJ2", "12351"),
    ("12385:G1", "12351"),
]
"""(referral, target) in the order they were recorded, a second apart."""


@pytest.fixture
async def admin(tmp_path: Path, store_kind: str) -> AsyncIterator[Admin]:
    clock = MovableClock()
    async with (
        store_url(store_kind, tmp_path) as url,
        admin_node(tmp_path, store_url=url, clock=clock, deployment=union_of_two()) as admin,
    ):
        for n, (rid, target) in enumerate(SEED):
            clock.now = T0 + timedelta(seconds=n)
            origin, _, number = rid.partition(":")
            async with admin.node.store.begin() as tx:
                await tx.upsert_referral(
                    ReferralRow(rid, origin, {origin: number}, "opened", target=target)
                )
        yield admin


async def _items(admin: Admin, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, _, page = await admin.get(f"/api/v1/referrals?{query}{cursor}", token=READ)
        assert status == 200, page
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        pytest.param("12351-12345", ["12351:C3", "12351:C1"], id="union-to-12345"),
        pytest.param("12351-12385", ["12351:C2"], id="union-to-12385"),
        pytest.param("12345-12351", ["12345:BJ2", "12345:BJ1"], id="12345-by-its-route-too"),
        pytest.param("12385-12351", ["12385:G1"], id="12385-to-union"),
        pytest.param("12345-12385", [], id="a-direction-none-takes"),
    ],
)
async def test_the_direction_filter_selects_exactly_its_referrals_page_by_page(
    admin: Admin, direction: str, expected: list[str]
) -> None:
    paged = await _items(admin, f"direction={direction}&limit=1")
    assert [item["referral_id"] for item in paged] == expected
    assert {item["direction"] for item in paged} <= {direction}


async def test_each_summary_names_the_direction_the_ledger_holds(admin: Admin) -> None:
    directions = {item["referral_id"]: item["direction"] for item in await _items(admin, "")}
    assert directions == {
        "12351:C1": "12351-12345",
        "12351:C2": "12351-12385",
        "12351:C3": "12351-12345",
        "12351:C4": "12351-unknown",  # the union routes `*`: no guess
        "12345:BJ1": "12345-12351",
        "12345:BJ2": "12345-12351",
        "12385:G1": "12385-12351",
    }


async def test_the_referrals_metric_counts_each_partner_of_the_union_apart(
    admin: Admin,
) -> None:
    status, _, text = await admin.get("/metrics")
    assert status == 200
    found = families(text)["hotline_bridge_referrals"]
    counts = {
        "12351-12345": 2,
        "12351-12385": 1,
        "12351-unknown": 1,
        "12345-12351": 2,  # one by its target, one by the route: one sample
        "12385-12351": 1,
    }
    for direction, count in counts.items():
        assert sample(found, direction=direction, state="opened") == count
    assert len(found.samples) == len(counts)
