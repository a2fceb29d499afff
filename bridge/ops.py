"""What the CLI's operator commands do, against the store (and, for reconcile, the
node's own hotlines). They need no running daemon; what they queue, the daemon's relay
publishes."""

from __future__ import annotations

import dataclasses
import json
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from bridge.app import PARTNER, build_side, topology_of
from bridge.config import Settings
from bridge.engine.replay import replay_dead_letter
from bridge.mapping import MappingTables
from bridge.reconcile import Reconciler
from bridge.store import Store


async def status(settings: Settings, referral_id: str | None = None) -> dict[str, Any]:
    """The ledger's figures, or one referral with its timeline."""
    store = await Store.connect(settings.store.url)
    try:
        if referral_id is None:
            return await store.stats()
        row = await store.get_referral(referral_id)
        if row is None:
            return {"error": f"no referral {referral_id}"}
        return {
            "referral_id": row.referral_id,
            "origin": row.origin_system,
            "ids": row.ids,
            "state": row.state,
            "early_warning": row.early_warning,
            "timeline": [
                {"at": e.at.isoformat(), "system": e.system, "kind": e.kind, "detail": e.detail}
                for e in await store.timeline(referral_id)
            ],
        }
    finally:
        await store.aclose()


async def list_dead_letters(settings: Settings, status: str | None, limit: int) -> list[dict]:
    store = await Store.connect(settings.store.url)
    try:
        return [
            {
                "id": d.id,
                "status": d.status,
                "system": d.system,
                "stage": d.stage,
                "referral_id": d.referral_id,
                "field": d.field,
                "reason": d.reason,
                "attempts": d.attempts,
                "created_at": d.created_at.isoformat(),
            }
            for d in await store.list_dead_letters(status=status, limit=limit)
        ]
    finally:
        await store.aclose()


async def replay(settings: Settings, letter_ids: list[int]) -> list[str]:
    tables = MappingTables.from_config(settings.mapping or None)
    store = await Store.connect(settings.store.url)
    try:
        async with aiohttp.ClientSession() as session:
            sides = {s: build_side(s, settings, session, tables) for s in settings.bridge.sides}
            intake = {s: side.intake for s, side in sides.items()}
            hotlines = {s: side.hotline for s, side in sides.items()}
            return [
                f"{letter_id}: "
                + await replay_dead_letter(
                    store,
                    letter_id,
                    intake=intake,
                    topology=topology_of(settings),
                    partner=PARTNER,
                    hotlines=hotlines,
                )
                for letter_id in letter_ids
            ]
    finally:
        await store.aclose()


async def discard(settings: Settings, letter_ids: list[int]) -> list[str]:
    store = await Store.connect(settings.store.url)
    try:
        results = []
        for letter_id in letter_ids:
            row = await store.set_dead_letter_status(letter_id, "discarded")
            results.append(f"{letter_id}: {'discarded' if row else 'unknown'}")
        return results
    finally:
        await store.aclose()


async def reconcile(settings: Settings) -> dict[str, Any]:
    """One reconciliation run of this node's sides, now."""
    tables = MappingTables.from_config(settings.mapping or None)
    async with AsyncExitStack() as stack:
        store = await Store.connect(settings.store.url)
        stack.push_async_callback(store.aclose)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        sides = {s: build_side(s, settings, session, tables) for s in settings.bridge.sides}
        reconciler = Reconciler(
            store=store,
            sides=sides,
            topology=topology_of(settings),
            partner=PARTNER,
            node_id="cli",
            interval_s=settings.bridge.reconcile_interval_s,
        )
        run_id = await reconciler.run_once("cli")
        run = await store.get_reconciliation(run_id)
        found = dataclasses.asdict(run) if run else {"id": run_id}  # slots: no __dict__
        return json.loads(json.dumps(found, default=str))
