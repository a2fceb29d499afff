"""schemathesis against the OpenAPI document the admin server serves: every operation
(every route of `ROUTES`, and the document itself), with a read and with an operate
token, answers no 5xx and nothing its own document does not say (a documented status
code, its content type and headers, a body that fits its schema).

The node (real SQLite store, fakes around it: `tests.unit.adminkit`) is seeded with
referrals both ways, timeline events, actions, dead letters in each status, audit rows
and reconciliation runs. Its admin server runs for the whole module in a thread of its
own with its own event loop: schemathesis calls synchronously (requests) and a server in
the test's own loop could not answer while that loop waits in such a call. Each
operation gets `MAX_EXAMPLES` requests, valid and invalid ones (schemathesis's positive
and negative modes); a path parameter is one of the ids that exist half the time (so
that 200 answers are checked, not only 404s), and a list starts at page 1 half the
time; then `SWEEP_EXAMPLES` valid ones for each id that exists. Generation is
derandomized: the same requests on every run.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bridge.admin.server import ROUTES
from bridge.store import ActionRow, AuditIn, DeadLetterIn, ReferralRow, Store
from schemas.canonical import Caller, Lifecycle, Priority, Referral
from tests.unit.adminkit import OPERATE, READ, admin_node

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""The response checks the acceptance names: no 5xx, nothing the document does not say."""

MAX_EXAMPLES = 25
"""Examples per operation and token, half of them valid requests, half not; a read
token on an operate route gets a fifth of them (the framework refuses it after the
query is checked: the few show that, the operate token's many check the route)."""


@dataclass(frozen=True)
class Served:
    """The admin server of the seeded node: its URL, and the ids that exist per path
    parameter name (`referral_id`, `letter_id`, `run_id`)."""

    url: str
    known: dict[str, list[str]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A seeded node's admin server in a background thread with its own event loop."""
    started: queue.Queue[Served | BaseException] = queue.Queue()
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        async with admin_node(tmp_path_factory.mktemp("schemathesis")) as admin:
            known = await seed(admin.node.store)
            stop.append((asyncio.get_running_loop(), asyncio.Event()))
            started.put(Served(admin.url, known))
            await stop[0][1].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # the fixture re-raises it in the test's thread
            started.put(exc)

    thread = threading.Thread(target=run, name="admin-under-schemathesis", daemon=True)
    thread.start()
    first = started.get(timeout=30)
    if isinstance(first, BaseException):
        raise first
    try:
        yield first
    finally:
        loop, event = stop[0]
        loop.call_soon_threadsafe(event.set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the admin server's thread did not stop"


@pytest.fixture(scope="module")
def api_schema(served: Served) -> BaseSchema:
    """The document as the server serves it, loaded by schemathesis."""
    return schemathesis.openapi.from_url(served.url + "/api/v1/openapi.json")


SWEEP_EXAMPLES = 3
"""Valid requests for each id that exists, on each operation with path parameters: the
random ones above may miss the one record whose answer breaks."""

ROLES = {(route.method, route.path): route.role for group in ROUTES for route in group.routes}
OPERATIONS = [*ROLES, ("GET", "/api/v1/openapi.json")]


def test_the_document_has_every_route_and_no_other(api_schema: BaseSchema) -> None:
    """What the tests below go through is what the server serves."""
    paths = api_schema.raw_schema["paths"]
    served = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert served == set(OPERATIONS)


@pytest.mark.parametrize("token", [READ, OPERATE], ids=["read", "operate"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_keeps_to_its_document(
    api_schema: BaseSchema, served: Served, method: str, path: str, token: str
) -> None:
    operation = api_schema[path][method]
    refused = token == READ and ROLES.get((method, path)) == "operate"
    statuses: list[int] = []

    def run(cases: st.SearchStrategy[Case], examples: int, *, swap_ids: bool) -> None:
        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, data=st.data())
        def call(case: Case, data: st.DataObject) -> None:
            for name in (case.path_parameters or {}) if swap_ids else ():
                ids = served.known.get(name)
                if ids and data.draw(st.booleans(), label=f"an existing {name}"):
                    case.path_parameters[name] = data.draw(st.sampled_from(ids), label=name)
            if case.query and "cursor" in case.query and data.draw(st.booleans(), label="p1"):
                del case.query["cursor"]  # a made-up cursor is a 400: half the lists start at 1
            response = case.call_and_validate(
                base_url=served.url,
                headers={"Authorization": f"Bearer {token}"},
                checks=CHECKS,
                timeout=10,
            )
            statuses.append(response.status_code)

        call()

    modes = st.one_of(operation.as_strategy(mode) for mode in GenerationMode)
    run(modes, MAX_EXAMPLES // 5 if refused else MAX_EXAMPLES, swap_ids=True)
    params = re.findall(r"\{([^}]+)\}", path)
    if not refused and params and all(name in served.known for name in params):
        for values in itertools.product(*(served.known[name] for name in params)):
            fixed = dict(zip(params, values, strict=True))
            valid = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed)
            run(valid, SWEEP_EXAMPLES, swap_ids=False)
    if method == "GET" and all(name in served.known for name in params):
        assert any(200 <= s < 300 for s in statuses), f"no example was answered 2xx: {statuses}"


# the seed -----------------------------------------------------------------------------

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def _referral(n: int, origin: str, state: Lifecycle, *, confidential: bool = False) -> Referral:
    if origin == "12345":
        number = f"BJ12345-20261129-00421{n}"
        ids, numbers = {"12345": number}, {"12345": number}
    else:
        number = f"12351-2026-000123{n}"
        ids, numbers = {"12351": f"c0ffee00-0000-4000-8000-00000000000{n}"}, {"12351": number}
    return Referral(
        referral_id=f"{origin}:{number}",
        origin=origin,  # type: ignore[arg-type]
        source=origin,  # type: ignore[arg-type]
        source_version=n,
        source_no=number,
        ids=ids,
        numbers=numbers,
        read_at=NOW,
        state=state,
        native_status="20",
        priority=Priority.EARLY_WARNING if n == 2 else Priority.NORMAL,
        district_code="110108",
        caller=Caller(name=f"测试人{n}", phone=f"1390000{n:04d}", confidential=confidential),
        subject="拖欠工资",
        text="用人单位拖欠三个月工资。",
        location="海淀区某街道1号",
        deadline=NOW,
    )


async def seed(store: Store) -> dict[str, list[str]]:
    """Referrals both ways with snapshots, timelines and actions, dead letters in each
    status, a finished reconciliation; returns the ids per path parameter name."""
    referrals = [
        _referral(1, "12345", Lifecycle.SIGNED),
        _referral(2, "12345", Lifecycle.DELIVERED, confidential=True),
        _referral(3, "12351", Lifecycle.REPLIED),
        _referral(4, "12351", Lifecycle.CLOSED),
    ]
    letters: list[int] = []
    async with store.begin() as tx:
        for ref in referrals:
            other = "12351" if ref.origin == "12345" else "12345"
            await tx.upsert_referral(
                ReferralRow(
                    referral_id=ref.referral_id,
                    origin_system=ref.origin,
                    ids=dict(ref.ids),
                    state=ref.state.value,
                    early_warning=ref.early_warning,
                    numbers=dict(ref.numbers),
                    last_snapshot=ref.model_dump(mode="json"),
                )
            )
            await tx.add_event(
                ref.referral_id, ref.source, "snapshot.read", {"version": ref.source_version}
            )
            await tx.record_action(
                ActionRow(ref.referral_id, other, "create", "create", "applied", {"native_id": "x"})
            )
            letters.append(
                await tx.park(
                    DeadLetterIn(
                        system=other,
                        stage="apply",
                        reason=f"{other} refused sign for {ref.referral_id}: rejected",
                        payload={"snapshot": ref.model_dump(mode="json")},
                        referral_id=ref.referral_id,
                        field="/caller/phone",
                    )
                )
            )
        letters.append(
            await tx.park(
                DeadLetterIn(
                    "12345", "intake", "areaCode: not 6 digits", {"record": {"areaCode": "1"}}
                )
            )
        )
    for n, (role, status) in enumerate([("operate", 200), ("read", 403), ("operate", 409)]):
        await store.add_audit(
            AuditIn(
                token=f"fingerprint{n}",
                role=role,
                operation="replayDeadLetter",
                method="POST",
                path=f"/api/v1/dead-letters/{letters[0]}/replay",
                status=status,
                outcome="ok" if status == 200 else "refused",
                detail={"params": {"letter_id": str(letters[0])}},
            )
        )
    await store.set_dead_letter_status(letters[1], "replayed")
    await store.set_dead_letter_status(letters[2], "discarded")
    run = await store.create_reconciliation("admin")
    await store.finish_reconciliation(run, "done", {"checked": 4, "republished": 0})
    open_run = await store.create_reconciliation("schedule")
    referral_ids = [r.referral_id for r in referrals]
    referral_ids += [f"12345:{r.numbers['12345']}" for r in referrals if "12345" in r.numbers]
    referral_ids += [f"12351:{r.numbers['12351']}" for r in referrals if "12351" in r.numbers]
    return {
        "referral_id": referral_ids,
        "letter_id": [str(i) for i in letters],
        "run_id": [str(run), str(open_run)],
    }
