"""The reconcile bench's world (`bench/recon_world.py`): the simulators and the ledger
it generates agree everywhere except at the discrepancies it seeds, and the ledger's
12345 content hashes are the intake's own (or the bench would measure false findings)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from adapters.hotline12345.sim.server import Simulator12345
from adapters.hotline12351.sim.server import Simulator12351
from bench.recon_world import KINDS, Spec, check_order_hash, items, load_simulators

SPEC = Spec(n=600, open_fraction=0.1, discrepancies=len(KINDS) * 2, now=datetime.now(UTC))


def test_the_world_differs_from_the_ledger_exactly_where_it_is_seeded() -> None:
    world = list(items(SPEC))
    kinds = Counter(item.kind for item in world if item.kind is not None)
    assert kinds == Counter(SPEC.seeded()) and all(n == 2 for n in kinds.values())
    assert sum(item.in_ledger for item in world) == SPEC.n
    for item in world:
        if not item.in_ledger:
            assert item.kind is not None and item.kind.startswith("unseen")
            assert item.updated >= SPEC.window_start  # the window lists find them
            continue
        assert (item.order != item.order_seen) == (item.kind == "changed_12345")
        assert (item.case != item.case_seen) == (item.kind == "changed_12351")
        if item.kind is not None:
            assert item.open and item.updated < SPEC.window_start  # only a read finds it
        if item.index < 50 or item.kind is not None:
            check_order_hash(item.order_seen or {})
    opened = sum(item.open for item in world if item.in_ledger)
    assert abs(opened - SPEC.n * SPEC.open_fraction) < SPEC.n * SPEC.open_fraction * 0.5


def test_the_simulators_hold_every_record_and_the_feed_in_time_order() -> None:
    sim12345, sim12351 = Simulator12345(rate_limit_per_s=None), Simulator12351()
    loaded = load_simulators(sim12345, sim12351, SPEC)
    seeded = SPEC.seeded()
    orders, cases = SPEC.n + seeded["unseen_12345"], SPEC.n + seeded["unseen_12351"]
    assert loaded == {"orders": orders, "cases": cases, "feed": cases}
    times = sim12351.book._feed_times
    assert times == sorted(times)
    created = [o for o in sim12345.orders.values() if o["sourceSystem"] == "12351"]
    assert created and all(sim12345.book.created_by[o["orderNo"]] == "demo-client" for o in created)
