"""End-to-end harness: both simulators over real HTTP, a real RabbitMQ (own namespace
per test, deleted afterwards), a bridge node in-process or as a real daemon process.

Assertions are made on what the simulators hold (the ground truth).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from sqlalchemy.engine import make_url

from adapters.retry import RetryPolicy
from bridge.app import Node, start_node, topology_of
from bridge.config import Settings, load_settings, settings_to_toml
from bridge.demo import Simulators
from bridge.transport import Transport

AMQP_URL = os.environ.get("HB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_ADMIN_URL = os.environ.get(
    "HB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[2]


class Stores:
    """Where `settings_for` puts a node's store: a SQLite file in the test's directory,
    or (`kind = "postgres"`) a database of its own on the local PostgreSQL, created
    here and dropped by `drop_all()` when the test ends (the `e2e_store` fixture)."""

    def __init__(self) -> None:
        self.kind = "sqlite"
        self.databases: list[str] = []

    def url(self, tmp_path: Path, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{tmp_path / name}"
        database = f"hb_e2e_{uuid.uuid4().hex[:10]}"
        _in_thread(_pg_execute(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{database}"'))
        self.databases.append(database)
        return make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(False)

    def drop_all(self) -> None:
        while self.databases:
            drop = f'DROP DATABASE IF EXISTS "{self.databases.pop()}" WITH (FORCE)'
            _in_thread(_pg_execute(POSTGRES_ADMIN_URL, drop))


STORES = Stores()


async def _pg_execute(url: str, statement: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise AssertionError(
            f"PostgreSQL does not answer at {make_url(url).host} ({type(exc).__name__}); "
            "the e2e tests on the PostgreSQL store need it (scripts/services.sh ensure "
            "starts it), or deselect them with -m 'not postgres'."
        ) from exc
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _in_thread(work: Awaitable[None]) -> None:
    """Run a coroutine to completion from sync code that may sit in a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()  # type: ignore[arg-type]


async def require_broker() -> None:
    """Fail (never skip) with what to do when RabbitMQ does not answer."""
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception as exc:
        raise AssertionError(
            f"RabbitMQ does not answer at {AMQP_URL} ({type(exc).__name__}). Start it "
            "(`rabbitmq-server -detached`, or scripts/services.sh ensure) and run again."
        ) from exc
    await connection.close()


def settings_for(
    sims: Simulators,
    tmp_path: Path,
    namespace: str,
    *,
    sides: list[str] | None = None,
    store_name: str = "bridge.db",
    amqp: dict[str, Any] | None = None,
    hotlines: dict[str, dict[str, Any]] | None = None,
    mapping: dict[str, Any] | None = None,
    admin: dict[str, Any] | None = None,
    partners_sections: dict[str, dict[str, Any]] | None = None,
    **bridge: Any,
) -> Settings:
    """A node's settings for a test: fast polls and a short retry ladder unless the test
    gives its own (`amqp`, `bridge` keys; `hotlines` adds keys to a hotline's section;
    `mapping` overrides tables, `admin` the admin API's settings, e.g. its tokens;
    `partners_sections` adds `[partners.<name>]` sections, for a partner without a
    simulator)."""
    sections = sims.config_sections()
    sides = sides or ["12345", "12351"]
    overrides: dict[str, Any] = {
        "amqp": {
            "url": AMQP_URL,
            "namespace": namespace,
            "shards": 2,
            "retry_delays_s": (1, 2, 4),
            "publish_timeout_s": 5,
            **(amqp or {}),
        },
        "store": {"url": STORES.url(tmp_path, store_name)},
        "admin": {"listen": "127.0.0.1:0", **(admin or {})},  # many nodes: any free port
        "bridge": {
            "sides": sides,
            # the test world's deployment: every simulated partner, and any other given
            "partners": list(dict.fromkeys([*sides, *sims.running, *(partners_sections or {})])),
            "poll_interval_s": 0.2,
            "poll_max_backoff_s": 2.0,
            "attempt_timeout_s": 5,
            **bridge,
        },
    }
    if mapping:
        overrides["mapping"] = mapping
    for side in sides:
        if f"hotline{side}" in sections:
            overrides[f"hotline{side}"] = {
                **sections[f"hotline{side}"],
                **(hotlines or {}).get(side, {}),
            }
        elif side in sections.get("partners", {}):
            overrides.setdefault("partners", {})[side] = sections["partners"][side]
    for name, section in (partners_sections or {}).items():
        overrides.setdefault("partners", {})[name] = section
    return load_settings(None, **overrides)


def fast_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=3,
        deadline_s=5,
        initial_s=0.05,
        max_wait_s=0.2,
        jitter_s=0.05,
        max_retry_after_s=2,
    )


async def start(
    settings: Settings, stack: AsyncExitStack, retry_policy: RetryPolicy | None = None
) -> Node:
    return await start_node(settings, stack, retry_policy=retry_policy or fast_policy())


@asynccontextmanager
async def running_node(
    sims: Simulators, tmp_path: Path, *, retry_policy: RetryPolicy | None = None, **kwargs: Any
) -> AsyncIterator[Node]:
    """A bridge node in this process, on its own AMQP namespace (deleted afterwards)."""
    settings = settings_for(sims, tmp_path, new_namespace(), **kwargs)
    try:
        async with AsyncExitStack() as stack:
            yield await start(settings, stack, retry_policy)
    finally:
        await delete_namespace(settings)


async def delete_namespace(settings: Settings) -> None:
    transport = await Transport.connect(settings.amqp.url, topology_of(settings))
    try:
        await transport.delete_topology()
    finally:
        await transport.aclose()


def new_namespace() -> str:
    return f"hb-test-{uuid.uuid4().hex[:10]}"


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float = 30.0,
    what: str = "",
) -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def get(record: Any, key: str) -> Any:
    if isinstance(record, dict):
        return record.get(key)
    return getattr(record, key, None)


def order(sims: Simulators, order_no: str) -> dict[str, Any]:
    o = sims.sim12345.orders[order_no]
    return o if isinstance(o, dict) else o.model_dump(mode="json")


def cases_from(sims: Simulators, order_no: str) -> list[dict[str, Any]]:
    return [
        c
        for c in sims.sim12351.cases.values()
        if (c.get("origin") or {}).get("external_no") == order_no
    ]


def orders_from(sims: Simulators, case_no: str) -> list[dict[str, Any]]:
    result = []
    for no in list(sims.sim12345.orders):
        o = order(sims, no)
        if o.get("sourceNo") == case_no:
            result.append(o)
    return result


def partner_events(sims: Simulators, case_id: str, type_: str | None = None) -> list[dict]:
    return [
        e
        for e in sims.sim12351.events.get(case_id, [])
        if str(e.get("actor", "")).startswith("partner:")
        and (type_ is None or e.get("type") == type_)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`hotline-bridge run` as a real process, for crash tests (SIGKILL)."""

    def __init__(self, config_file: Path, log_file: Path) -> None:
        self.config_file = config_file
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "run", "--config", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def write_config(settings: Settings, path: Path) -> None:
    """A TOML file equivalent to `settings` (for a daemon process)."""
    path.write_text(settings_to_toml(settings), encoding="utf-8")


# --- a steady two-way flow and the exactly-once checks (crash and broker tests) ----------


class Flow:
    """People on both hotlines, in the test's own event loop, calling the in-process
    simulators directly: 12345 dispatches orders to the union and 12351 agents transfer
    cases to 12345 (`rate_per_s` each) while producing; every referral is then moved along
    to its end (agents dispatch, handle, respond, sometimes reject or ask an extension;
    12345 visits, sometimes dissatisfied → reopen, then closes; district units reply).

    Each step waits until the bridge has carried the previous one across (the order is
    signed / the case exists / the partner event is there), so every effect
    `assert_exactly_once` expects is one the bridge cannot legitimately skip.
    """

    TICK_S = 0.1

    def __init__(
        self,
        sims: Simulators,
        *,
        seed: int = 7,
        rate_per_s: float = 1.5,
        total: int | None = None,
    ) -> None:
        import random

        self.sims = sims
        self.total = total  # stop producing after this many referrals (orders + cases)
        self.rng = random.Random(seed)
        self.rate_per_s = rate_per_s
        self.producing = True
        self.orders: dict[str, dict[str, bool]] = {}  # dispatched order no → its fate
        self.cases: dict[str, dict[str, Any]] = {}  # transferred case id → its fate
        self.refused = 0  # steps a simulator refused (a race with the bridge): retried
        self._credit = 0.0
        self._case_ids: dict[str, str] = {}
        self._order_nos: dict[str, str] = {}
        self._by_origin: dict[str, str] = {}
        self._by_source: dict[str, str] = {}
        self._indexed_cases = self._indexed_orders = -1
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="e2e.flow")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self.TICK_S)

    def tick(self) -> None:
        from adapters.hotline12345.sim.state import BusinessError
        from adapters.hotline12351.sim.requests import Problem

        if self.producing:
            self._credit += self.rate_per_s * self.TICK_S
            while self._credit >= 1:
                self._credit -= 1
                self._produce()
                if self.total is not None and len(self.orders) + len(self.cases) >= self.total:
                    self.producing = False
                    break
        for no, fate in list(self.orders.items()):
            if self.rng.random() < 0.5:
                try:
                    self._move_order(no, fate)
                except (BusinessError, Problem):
                    self.refused += 1
        for case_id, fate in list(self.cases.items()):
            if self.rng.random() < 0.5:
                try:
                    self._move_case(case_id, fate)
                except (BusinessError, Problem):
                    self.refused += 1

    def _produce(self) -> None:
        rng = self.rng
        no = self.sims.sim12345.book.dispatch({"urgency": rng.choice(["1", "2"])})
        roll = rng.random()
        self.orders[no] = {
            "reject": roll < 0.15,
            "extension": 0.15 <= roll < 0.35,
            "reopen": rng.random() < 0.3,
        }
        case = self.sims.sim12351.record_case(
            subject="小区路灯损坏",
            description="职工反映小区路灯损坏多日，夜间出行不便。",
            district_code=rng.choice(["110101", "110105", "110108"]),
            service_type="other",
            priority=rng.choice(["normal", "normal", "high"]),
            worker={"name": "王某", "phone": "13800138000"},
            transfer={"to": "12345", "reason": "非工会事项", "category": "0302"},
        )
        self.cases[case["id"]] = {
            "case_no": case["case_no"],
            "extension": rng.random() < 0.2,
            "reopen": rng.random() < 0.3,
        }

    # 12345-origin: the union works the case, 12345 visits / reopens / closes the order.
    def _move_order(self, no: str, fate: dict[str, bool]) -> None:
        from adapters.hotline12345.sim.control import apply_step

        sims = self.sims
        order_ = sims.sim12345.orders[no]
        case = self._case_of(no)
        if case is None:
            return
        case_id, status, round_ = case["id"], case["status"], order_["reopenCount"]
        if status == "received":
            sims.sim12351.agent(case_id, "dispatch")
        elif status == "dispatched":
            sims.sim12351.agent(case_id, "handle")
        elif status == "handling":
            if order_["orderStatus"] == "10":
                return  # not signed yet: the union waits for the bridge to sign
            if fate["reject"] and round_ == 0:
                sims.sim12351.agent(case_id, "reject", reason="经核实不属于工会受理范围")
            elif fate["extension"] and round_ == 0 and case["extension_request"] is None:
                from datetime import timedelta

                from adapters.hotline12351.sim.requests import parse_rfc3339
                from schemas.hotline12351 import rfc3339

                base = parse_rfc3339(case["origin"]["deadline"])
                sims.sim12351.agent(
                    case_id,
                    "request_extension",
                    new_deadline=rfc3339(base + timedelta(days=3)),
                    reason="需协调用人单位，申请延期",
                )
            elif (
                case["extension_request"] is not None
                and not (
                    order_["orderStatus"] == "25" and _has_partner_update(sims, case_id, "extended")
                )
                and round_ == 0
            ):
                return  # the extension is on its way to 12345 and back
            else:
                sims.sim12351.agent(case_id, "respond", text=f"第{round_ + 1}次答复：已协调处理。")
        elif status == "responded" and order_["orderStatus"] == "30":
            satisfaction = "3" if fate["reopen"] and round_ == 0 else "1"
            apply_step(sims.sim12345.book, no, "visit", {"satisfaction": satisfaction})
        elif status == "callback_done" and order_["orderStatus"] == "40":
            if order_["visit"]["satisfaction"] == "3" and round_ == 0:
                apply_step(sims.sim12345.book, no, "reopen", {"reason": "来电人不满意"})
            else:
                apply_step(sims.sim12345.book, no, "close", {})
        elif status == "callback_done" and order_["orderStatus"] == "50":
            sims.sim12351.agent(case_id, "close")

    # 12351-origin: the district unit works the order, 12345 visits / reopens / closes.
    def _move_case(self, case_id: str, fate: dict[str, Any]) -> None:
        from datetime import datetime, timedelta

        from adapters.hotline12345.sim.control import apply_step
        from schemas.hotline12345 import TIME_FORMAT

        sims = self.sims
        no = self._order_of(fate["case_no"])
        if no is None:
            return
        order_ = sims.sim12345.orders[no]
        status, round_ = order_["orderStatus"], order_["reopenCount"]
        told = _partner_updates_by_round(sims, case_id)
        book = sims.sim12345.book
        if status == "20":
            if round_ == 0 and ("accepted", False, None) not in told:
                return
            if round_ > 0 and ("in_progress", False, round_) not in told:
                return
            if fate["extension"] and round_ == 0:
                deadline = datetime.strptime(order_["deadline"], TIME_FORMAT) + timedelta(days=3)
                apply_step(
                    book,
                    no,
                    "extension",
                    {"newDeadline": deadline.strftime(TIME_FORMAT), "reason": "情况复杂，申请延期"},
                )
            else:
                apply_step(
                    book,
                    no,
                    "reply",
                    {"content": f"第{round_ + 1}次办理：已修复。", "resolved": True},
                )
        elif status == "25" and ("extended", False, None) in told:
            apply_step(book, no, "reply", {"content": "延期后办理：已修复。", "resolved": True})
        elif status == "30" and ("replied", False, round_) in told:
            satisfaction = "3" if fate["reopen"] and round_ == 0 else "1"
            apply_step(book, no, "visit", {"satisfaction": satisfaction})
        elif status == "40" and ("replied", True, round_) in told:
            if order_["visit"]["satisfaction"] == "3" and round_ == 0:
                apply_step(book, no, "reopen", {"reason": "来电人不满意"})
            else:
                apply_step(book, no, "close", {})

    def _case_of(self, no: str) -> dict[str, Any] | None:
        """The 12351 case made from order `no` (found once, then looked up by id: a flow
        of hundreds of referrals must not scan every case on every tick)."""
        case_id = self._case_ids.get(no)
        if case_id is None:
            found = self._index_cases().get(no)
            if found is None:
                return None
            case_id = self._case_ids[no] = found
        return self.sims.sim12351.cases[case_id]

    def _index_cases(self) -> dict[str, str]:
        cases = self.sims.sim12351.cases
        if len(cases) != self._indexed_cases:
            self._indexed_cases = len(cases)
            self._by_origin = {
                c["origin"]["external_no"]: c["id"] for c in cases.values() if c.get("origin")
            }
        return self._by_origin

    def _order_of(self, case_no: str) -> str | None:
        """The 12345 order made from case `case_no` (found once, as `_case_of`)."""
        no = self._order_nos.get(case_no)
        if no is None:
            orders = self.sims.sim12345.orders
            if len(orders) != self._indexed_orders:
                self._indexed_orders = len(orders)
                self._by_source = {o["sourceNo"]: n for n, o in orders.items() if o.get("sourceNo")}
            no = self._by_source.get(case_no)
            if no is None:
                return None
            self._order_nos[case_no] = no
        return no

    def done(self) -> bool:
        """Every referral has reached its end on both sides (and the bridge said so)."""
        sims = self.sims
        for no in self.orders:
            case = self._case_of(no)
            status = sims.sim12345.orders[no]["orderStatus"]
            if case is None:
                return False
            if (status, case["status"]) not in (("50", "closed"), ("60", "rejected")):
                return False
        for case_id, fate in self.cases.items():
            made = self._order_of(fate["case_no"])
            if made is None or sims.sim12345.orders[made]["orderStatus"] != "50":
                return False
            if ("closed", False, None) not in _partner_updates_by_round(sims, case_id):
                return False
        return True

    def summary(self) -> str:
        sims = self.sims
        open_orders = [
            no for no in self.orders if sims.sim12345.orders[no]["orderStatus"] not in ("50", "60")
        ]
        open_cases = [
            f["case_no"]
            for f in self.cases.values()
            if not orders_from(sims, f["case_no"])
            or orders_from(sims, f["case_no"])[0]["orderStatus"] != "50"
        ]
        return (
            f"{len(self.orders)} orders dispatched ({len(open_orders)} open: "
            f"{open_orders[:5]}), {len(self.cases)} cases transferred "
            f"({len(open_cases)} open: {open_cases[:5]}), {self.refused} steps refused"
        )


def _has_partner_update(sims: Simulators, case_id: str, status: str) -> bool:
    return any(
        e["body"].get("status") == status for e in partner_events(sims, case_id, "partner_update")
    )


ONCE_PER_ORDER_UPDATES = frozenset({"accepted", "extended", "closed", "returned", "withdrawn"})


def _partner_updates_by_round(sims: Simulators, case_id: str) -> list[tuple[Any, ...]]:
    """The partner_update events of a transferred case as (status, with satisfaction,
    reopen round); round None for the once-per-order statuses. A round begins with its
    `in_progress` update."""
    keys: list[tuple[Any, ...]] = []
    round_ = 0
    for event in partner_events(sims, case_id, "partner_update"):
        status = event["body"].get("status")
        if status == "in_progress":
            round_ += 1
        keys.append(
            (
                status,
                bool(event["body"].get("satisfaction")),
                None if status in ONCE_PER_ORDER_UPDATES else round_,
            )
        )
    return keys


def _duplicates(keys: list[Any]) -> list[Any]:
    from collections import Counter

    return [key for key, n in Counter(keys).items() if n > 1]


def assert_exactly_once(sims: Simulators, flow: Flow) -> None:
    """Every effect of the bridge on either simulator happened exactly once."""
    from collections import defaultdict

    bridge_unit = f"unit:{sims.unit_code}"
    unit_actions: dict[str, list[str]] = defaultdict(list)  # order no → bridge action keys
    visited_rounds: dict[str, list[int]] = defaultdict(list)
    rounds: dict[str, int] = defaultdict(int)
    creates: dict[str, int] = defaultdict(int)
    for entry in sims.sim12345.actions:
        no, action = entry["orderNo"], entry["action"]
        if action == "reopen":
            rounds[no] += 1
        elif action == "visit":
            visited_rounds[no].append(rounds[no])
        elif action == "create":
            creates[no] += 1
        if entry["by"] == bridge_unit:
            unit_actions[no].append(f"reply:{rounds[no]}" if action == "reply" else action)
    problems: list[str] = []

    for no in flow.orders:
        found = cases_from(sims, no)
        if len(found) != 1:
            problems.append(f"order {no}: {len(found)} 12351 cases")
            continue
        case = found[0]
        events = sims.sim12351.events[case["id"]]
        responded: list[int] = []
        partner: list[tuple[Any, ...]] = []
        round_ = 0
        for event in events:
            if event["type"] == "responded":
                responded.append(round_)
            if str(event["actor"]).startswith("partner:"):
                if event["type"] == "reopened":
                    round_ += 1
                partner.append((event["type"], event["body"].get("status"), round_))
        expected = ["sign"] + [f"reply:{r}" for r in responded]
        if case["status"] == "rejected":
            expected.append("return")
        if case["extension_request"] is not None:
            expected.append("extension")
        if sorted(unit_actions[no]) != sorted(expected):
            problems.append(f"order {no}: 12345 actions {unit_actions[no]}, expected {expected}")
        want = [("created", None, 0)]
        want += [("reopened", None, r) for r in range(1, rounds[no] + 1)]
        want += [("callback_result", None, r) for r in visited_rounds[no]]
        if case["extension_request"] is not None:
            want.append(("partner_update", "extended", 0))
        if sorted(map(str, partner)) != sorted(map(str, want)):
            problems.append(f"case of {no}: partner events {partner}, expected {want}")

    for case_id, fate in flow.cases.items():
        made = orders_from(sims, fate["case_no"])
        if len(made) != 1:
            problems.append(f"case {fate['case_no']}: {len(made)} 12345 orders")
            continue
        no = made[0]["orderNo"]
        if creates[no] != 1:
            problems.append(f"order {no}: created {creates[no]} times")
        if len(partner_events(sims, case_id, "external_ref")) != 1:
            problems.append(f"case {fate['case_no']}: external_ref not exactly once")
        told = _partner_updates_by_round(sims, case_id)
        if dups := _duplicates(told):
            problems.append(f"case {fate['case_no']}: partner_update repeated {dups}")
        reopens = sum(1 for key in told if key[0] == "in_progress")
        if reopens != made[0]["reopenCount"]:
            problems.append(f"case {fate['case_no']}: {reopens} in_progress updates")
        want_told = {("accepted", False, None), ("closed", False, None)}
        want_told |= {("in_progress", False, r) for r in range(1, made[0]["reopenCount"] + 1)}
        want_told |= {("replied", True, r) for r in visited_rounds[no]}
        if no in sims.sim12345.book.extended:
            want_told.add(("extended", False, None))
        if missing := want_told - set(told):
            problems.append(
                f"case {fate['case_no']}: partner_update missing {sorted(missing, key=str)}"
            )

    assert not problems, "not exactly once:\n" + "\n".join(problems)


# --- how long each step waited (the prompt-recovery and rate-limit tests) ----------------


@dataclass(frozen=True)
class Step:
    at: datetime
    side: str
    what: str


@dataclass
class Latencies:
    """Per referral, the steps on both simulators in time order; the longest wait between
    two consecutive steps, and how long signing took after dispatch."""

    worst_gap_s: float = 0.0
    worst: tuple[str, Step, Step] | None = None
    sign_s: list[float] = field(default_factory=list)

    @property
    def median_sign_s(self) -> float:
        import statistics

        return statistics.median(self.sign_s) if self.sign_s else float("nan")

    def describe(self) -> str:

        where = ""
        if self.worst is not None:
            ref, before, after = self.worst
            where = f" ({ref}: {before.side} {before.what} → {after.side} {after.what})"
        median = self.median_sign_s
        p90 = sorted(self.sign_s)[int(len(self.sign_s) * 0.9)] if self.sign_s else float("nan")
        return (
            f"worst wait between two steps {self.worst_gap_s:.1f}s{where}; sign latency "
            f"median {median:.1f}s, p90 {p90:.1f}s, max {max(self.sign_s, default=0):.1f}s "
            f"over {len(self.sign_s)} orders"
        )


def _order_steps(sims: Simulators, no: str) -> list[Step]:
    return [
        Step(_beijing(a["time"]), "12345", a["action"])
        for a in sims.sim12345.actions
        if a["orderNo"] == no
    ]


def _case_steps(sims: Simulators, case_id: str) -> list[Step]:
    from adapters.hotline12351.sim.requests import parse_rfc3339

    return [
        Step(parse_rfc3339(e["at"]), "12351", e["type"] + _status(e))
        for e in sims.sim12351.events.get(case_id, [])
    ]


def _status(event: dict[str, Any]) -> str:
    status = event.get("body", {}).get("status")
    return f" {status}" if status else ""


def _beijing(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))


def latencies(sims: Simulators, flow: Flow) -> Latencies:
    """How long every step of every referral of `flow` waited for the one before it,
    on both simulators' clocks (moved by no test that measures this). 12345 records
    whole seconds, so a wait is exact to about a second."""
    result = Latencies()
    referrals: list[tuple[str, list[Step]]] = []
    for no in flow.orders:
        case = flow._case_of(no)
        steps = _order_steps(sims, no) + (_case_steps(sims, case["id"]) if case else [])
        referrals.append((no, steps))
        dispatched = [s.at for s in steps if s.what == "dispatch"]
        signed = [s.at for s in steps if s.what == "sign"]
        if dispatched and signed:
            result.sign_s.append((signed[0] - dispatched[0]).total_seconds())
    for case_id, fate in flow.cases.items():
        made = flow._order_of(fate["case_no"])
        steps = _case_steps(sims, case_id) + (_order_steps(sims, made) if made else [])
        referrals.append((fate["case_no"], steps))
    for ref, steps in referrals:
        steps.sort(key=lambda s: s.at)
        for before, after in itertools.pairwise(steps):
            gap = (after.at - before.at).total_seconds()
            if gap > result.worst_gap_s:
                result.worst_gap_s, result.worst = gap, (ref, before, after)
    return result


async def replied_order(sims: Simulators) -> tuple[str, str]:
    """An order dispatched to the union, carried through the bridge to its case, signed,
    handled and answered, and the reply back at 12345; returns (order no, case id)."""
    from sim_actions import agent, dispatch  # sim_actions needs nothing of the harness

    no = await dispatch(sims)
    await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
    await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")
    case_id = cases_from(sims, no)[0]["id"]
    await agent(sims, case_id, "dispatch")
    await agent(sims, case_id, "handle")
    await agent(sims, case_id, "respond", text="已处理", resolved=True)
    await wait_until(lambda: order(sims, no)["orderStatus"] == "30", what="reply")
    return no, case_id
