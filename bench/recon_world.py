"""The world of `bench/reconcile.py`: a year of referrals as the two hotlines hold them
and as the bridge's ledger remembers them, generated deterministically from a `Spec`.

The bench's processes each walk the same generator: the simulators' process fills its
books with `Item.order` / `Item.case`, the generator's process writes the ledger rows of
the same items into the store. Same spec, same seed: same order numbers, case ids,
states, times and content hashes on both sides, without shipping a million records
between processes.

Layout of a ledger of `n` referrals (half from 12345, half from 12351, alternating):

- created evenly over `span_days` up to `now`; most are settled long ago (`closed` on
  both sides); the newest ones hold the open referrals (`open_fraction` of `n`: 12345
  orders signed, cases in handling; transferred cases with their 12345 order signed);
- a record's last change (`updateTime` / `updated_at`) falls between its creation and
  `now`; those changed within the window (`window_s`) are what a run's list calls see;
- `discrepancies` seeded on purpose, spread over `KINDS` (see there): the simulators
  differ from the ledger exactly there, nowhere else.

What the ledger holds per referral is what the engine leaves after a normal life:
`referrals` (ids, state, the last snapshot), `feed_seen` of both systems (the content
hash / version last read), `created_index` (the case or order the bridge created), and
`source_versions` of both sources. `actions` and `events` are written for the *active*
referrals (open, changed within the window, or seeded), not for the settled past: no
run reads the timeline of a referral it does not check.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from adapters.hotline12345.feed import FeedPosition
from adapters.hotline12345.sim.data import order_fields
from adapters.hotline12345.sim.state import DEADLINES, district_unit
from adapters.hotline12351.feed import CasesPosition
from adapters.hotline12351.sim.data import random_case
from bridge.mapping import MappingTables, case_to_referral, order_to_referral
from bridge.partners.hotline12351.side import _content as _case_content  # the intake's own digest
from schemas.canonical import referral_id
from schemas.hotline12345 import TIME_FORMAT, Order, Reply, Visit
from schemas.hotline12351 import Case, rfc3339

KINDS: Final = (
    "unseen_12345",  # an order dispatched to the union, backdated inside the window: never read
    "unseen_12351",  # a case transferred to 12345 inside the window: never read
    "changed_12345",  # an open order changed with its updateTime set back (outside the window)
    "changed_12351",  # an open case fixed by hand: no feed entry, same version
    "action_missing",  # the ledger has `sign` applied at 12345; the order is still at 10
    "state_mismatch",  # 12345 replied (30) while the 12351 case is still in handling
    "parked_unresolved",  # a snapshot parked at 12345 whose cause was fixed since
)
"""The discrepancies the bench seeds, round-robin over `--discrepancies K`. The first
two are records the ledger does not have (found by the window lists); the others sit
on open referrals, outside the window (found by reading the referral)."""

EXPECTED_FINDING: Final = {
    "unseen_12345": "unseen",
    "unseen_12351": "unseen",
    "changed_12345": "changed",
    "changed_12351": "changed",
    "action_missing": "action_missing",
    "state_mismatch": "state_mismatch",
    "parked_unresolved": "parked_unresolved",
}
"""The finding kind (issue 9 contract) a run should report for each seeded kind."""

POOL: Final = 512
"""Distinct citizen-facing contents (title, text, caller, address): shared by many
records, so that the simulators' million records fit in a few GB."""
SIM_CLIENT: Final = "hotline-bridge"  # the 12351 client name of the demo api key
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")  # fixed offset: fast


@dataclass(frozen=True)
class Spec:
    n: int
    open_fraction: float
    discrepancies: int
    now: datetime
    window_s: float = 86_400.0
    seed: int = 9
    span_days: float = 365.0
    unit_code: str = "BJZGH"
    client_id: str = "demo-client"

    def to_json(self) -> str:
        data = self.__dict__ | {"now": self.now.isoformat()}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        data["now"] = datetime.fromisoformat(data["now"])
        return cls(**data)

    @property
    def window_start(self) -> datetime:
        return self.now - timedelta(seconds=self.window_s)

    def seeded(self) -> dict[str, int]:
        """How many of each kind `discrepancies` seeds (round-robin over `KINDS`)."""
        base, extra = divmod(self.discrepancies, len(KINDS))
        return {k: base + (1 if i < extra else 0) for i, k in enumerate(KINDS)}


@dataclass
class Item:
    """One referral (or one record the ledger never saw), on both sides."""

    index: int
    referral_id: str
    origin: str
    open: bool
    active: bool
    kind: str | None
    in_ledger: bool
    created: datetime
    updated: datetime
    state: str = "closed"
    early_warning: bool = False
    order: dict[str, Any] | None = None  # what 12345 holds now
    case: dict[str, Any] | None = None  # what 12351 holds now
    order_seen: dict[str, Any] | None = None  # the order as the bridge last read it
    case_seen: dict[str, Any] | None = None  # the case as the bridge last read it (and the feed)
    seq_12345: int = 1
    actions: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(system, key, kind, outcome) of the actions the ledger records (active ones)."""

    @property
    def order_no(self) -> str | None:
        return self.order["orderNo"] if self.order else None

    @property
    def case_id(self) -> str | None:
        return self.case["id"] if self.case else None


def _bj(value: datetime) -> str:
    """12345's local time text for an aware datetime."""
    return value.astimezone(BEIJING).strftime(TIME_FORMAT)


def _rfc(value: datetime) -> str:
    return rfc3339(value.astimezone(BEIJING))


class _Pool:
    """Shared contents: orders' citizen fields and cases' worker/subject fields."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.orders = [order_fields(rng) for _ in range(POOL)]
        self.cases = []
        while len(self.cases) < POOL:
            fields = random_case(rng, 1.0)
            if fields.get("district_code"):
                fields.pop("transfer", None)
                self.cases.append(fields)


def items(spec: Spec) -> Iterator[Item]:
    """Every item of the world, in index order: the `n` ledger referrals, then the
    unseen records (simulators only)."""
    pool = _Pool(spec.seed)
    rng = random.Random(spec.seed + 1)
    n = spec.n
    span = timedelta(days=spec.span_days)
    step = span / max(n, 1)
    start = spec.now - span
    open_target = round(n * spec.open_fraction)
    candidates = min(n, max(open_target * 3 // 2, open_target))
    open_p = open_target / candidates if candidates else 0.0
    seeded = spec.seeded()
    on_open = [k for k in KINDS if not k.startswith("unseen") for _ in range(seeded[k])]
    # Seeded kinds go to open 12345-origin referrals outside the window, spread out.
    stride = max(1, (open_target // 2) // (len(on_open) + 1)) if on_open else 1
    open_12345 = 0
    latest = spec.now - timedelta(seconds=60)
    edge = spec.window_start - timedelta(hours=1)  # well outside: a late pass still agrees
    for i in range(n):
        origin = "12345" if i % 2 == 0 else "12351"
        created = start + step * (i + 0.5)
        is_open = i >= n - candidates and rng.random() < open_p
        if is_open:
            updated = created + (latest - created) * rng.random()
        else:
            updated = min(created + timedelta(hours=1 + rng.random() * 240), latest)
        kind = None
        if is_open and origin == "12345":
            open_12345 += 1
            if on_open and open_12345 % stride == 0:
                kind = on_open.pop()
                updated = min(updated, edge - timedelta(hours=rng.random() * 48))
        active = is_open or kind is not None or updated >= edge
        item = Item(i, "", origin, is_open, active, kind, True, created, updated)
        if origin == "12345":
            _from_12345(item, spec, pool, rng)
        else:
            _from_12351(item, spec, pool, rng)
        yield item
    for kind in ("unseen_12345", "unseen_12351"):
        for j in range(seeded[kind]):
            i = n + (0 if kind == "unseen_12345" else seeded["unseen_12345"]) + j
            at = spec.now - timedelta(hours=2, minutes=j % 60)
            item = Item(i, "", kind[-5:], True, True, kind, False, at, at)
            if kind == "unseen_12345":
                _from_12345(item, spec, pool, rng)
                item.case = item.case_seen = None
            else:
                _from_12351(item, spec, pool, rng)
                item.order = item.order_seen = None
                assert item.case is not None
                item.case["transfer"]["external_no"] = None
                item.case["version"] = 2
            yield item


def _from_12345(item: Item, spec: Spec, pool: _Pool, rng: random.Random) -> None:
    """An order dispatched to the union's unit and the case the bridge created from it."""
    t = pool.orders[item.index % POOL]
    created, updated = item.created, item.updated
    order_no = f"BJ12345-{created.astimezone(BEIJING):%Y%m%d}-{item.index + 1:07d}"
    item.referral_id = referral_id("12345", order_no)
    item.early_warning = t["urgency"] == "3"
    deadline = created + DEADLINES[t["urgency"]]
    order: dict[str, Any] = {
        "orderNo": order_no,
        **t,
        "acceptTime": _bj(created - timedelta(minutes=10)),
        "dispatchTime": _bj(created),
        "deadline": _bj(deadline),
        "unitCode": spec.unit_code,
        "orderStatus": "20",
        "reopenCount": 0,
        "reopenReason": None,
        "sourceSystem": None,
        "sourceNo": None,
        "reply": None,
        "visit": None,
        "updateTime": _bj(updated),
    }
    case_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    case: dict[str, Any] = {
        "id": case_id,
        "case_no": f"12351-{created.astimezone(BEIJING).year}-{item.index + 1:07d}",
        "channel": "partner",
        "created_at": _rfc(created + timedelta(minutes=1)),
        "updated_at": _rfc(updated),
        "version": 3,
        "worker": {
            "name": t["callerName"] or None,
            "phone": t["callerPhone"] or None,
            "employer": None,
            "member_card_no": None,
            "is_member": None,
            "confidential": t["confidential"],
        },
        "district_code": t["areaCode"],
        "level": "district",
        "service_type": "other",
        "priority": "alert" if t["urgency"] == "3" else "normal",
        "subject": t["title"],
        "description": t["content"],
        "location": t["address"],
        "status": "handling",
        "response": None,
        "callback": None,
        "rejection_reason": None,
        "reopen_count": 0,
        "transfer": None,
        "extension_request": None,
        "origin": {"system": "12345", "external_no": order_no, "deadline": _rfc(deadline)},
    }
    if item.open:
        item.state, item.seq_12345 = "in_progress", 2
        item.actions = [
            ("12351", "create_case", "create_case", "applied"),
            ("12345", "sign", "sign", "applied"),
        ]
    else:
        replied = created + (updated - created) / 2
        order |= {
            "orderStatus": "50",
            "reply": {
                "content": "已联系用人单位协调处理，职工诉求已落实。",
                "handler": "12351职工服务热线",
                "replyTime": _bj(replied),
                "resolved": True,
            },
            "visit": {"visitTime": _bj(updated), "satisfaction": "1", "remark": None},
        }
        case |= {
            "status": "closed",
            "version": 7,
            "response": {
                "text": "已联系用人单位协调处理，职工诉求已落实。",
                "responder": "sim",
                "responded_at": _rfc(replied),
                "resolved": True,
            },
            "callback": {"at": _rfc(updated), "satisfaction": "satisfied", "note": None},
        }
        item.state, item.seq_12345 = "closed", 4
        item.actions = [
            ("12351", "create_case", "create_case", "applied"),
            ("12345", "sign", "sign", "applied"),
            ("12345", "reply:0", "reply", "applied"),
            ("12351", "callback:0", "callback_result", "applied"),
        ]
    item.order, item.case = order, case
    item.order_seen, item.case_seen = order, case
    _seed(item)


def _seed(item: Item) -> None:
    """Make the simulators differ from the ledger as `item.kind` says."""
    assert item.order is not None and item.case is not None
    kind = item.kind
    if kind == "changed_12345":
        # Changed at 12345 with its updateTime set back: no list call shows it.
        item.order = item.order | {"address": item.order["address"] + "（地址已更正）"}
    elif kind == "changed_12351":
        # Fixed by hand in the union's database: same version, same updated_at, no feed
        # entry; only its content differs (only a read of the case shows it).
        item.case = item.case | {"location": (item.case["location"] or "") + "（地址已更正）"}
    elif kind == "action_missing":
        # The ledger has `sign` applied; 12345 lost it: the order is still at 10, and
        # the bridge never read it otherwise.
        item.order = item.order | {"orderStatus": "10", "updateTime": item.order["dispatchTime"]}
        item.order_seen = item.order
        item.seq_12345 = 1
    elif kind == "state_mismatch":
        # 12345 shows a reply (read by the bridge) while the case is still in handling.
        item.order = item.order | {
            "orderStatus": "30",
            "reply": {
                "content": "已办结。",
                "handler": "区级承办人",
                "replyTime": item.order["updateTime"],
                "resolved": True,
            },
        }
        item.order_seen = item.order
        item.seq_12345 = 3
        item.state = "replied"


def _from_12351(item: Item, spec: Spec, pool: _Pool, rng: random.Random) -> None:
    """A case transferred to 12345 and the order the bridge created from it."""
    t = pool.cases[item.index % POOL]
    created, updated = item.created, item.updated
    case_no = f"12351-{created.astimezone(BEIJING).year}-{item.index + 1:07d}"
    order_no = f"BJ12345-{created.astimezone(BEIJING):%Y%m%d}-{item.index + 1:07d}"
    item.referral_id = referral_id("12351", case_no)
    item.early_warning = t["priority"] == "alert"
    case_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    moved = _rfc(created + timedelta(minutes=2))
    case: dict[str, Any] = {
        "id": case_id,
        "case_no": case_no,
        "channel": t["channel"],
        "created_at": _rfc(created),
        "updated_at": _rfc(updated),
        "version": 4 if item.open else 6,
        "worker": {
            "name": None,
            "phone": None,
            "employer": None,
            "member_card_no": None,
            "is_member": None,
            "confidential": False,
        }
        | t["worker"],
        "district_code": t["district_code"],
        "level": "district",
        "service_type": t["service_type"],
        "priority": t["priority"],
        "subject": t["subject"],
        "description": t["description"],
        "location": t["location"],
        "status": "transferred",
        "response": None,
        "callback": None,
        "rejection_reason": None,
        "reopen_count": 0,
        "transfer": {
            "to": "12345",
            "reason": "不属于工会职责范围，转12345市民热线办理",
            "category": "0101",
            "requested_at": moved,
            "external_no": order_no,
        },
        "extension_request": None,
        "origin": None,
    }
    urgency = {"alert": "3", "high": "2"}.get(t["priority"], "1")
    made = created + timedelta(minutes=3)
    worker = case["worker"]
    order: dict[str, Any] = {
        "orderNo": order_no,
        "title": t["subject"],
        "content": t["description"] or t["subject"],
        "callerName": worker["name"] or "",
        "callerPhone": worker["phone"] or "",
        "category": "0101",
        "areaCode": t["district_code"],
        "streetCode": None,
        "address": t["location"] or "",
        "urgency": urgency,
        "acceptTime": _bj(made),
        "dispatchTime": _bj(made),
        "deadline": _bj(made + DEADLINES[urgency]),
        "unitCode": district_unit(t["district_code"]),
        "orderStatus": "20",
        "confidential": bool(worker["confidential"]),
        "reopenCount": 0,
        "reopenReason": None,
        "sourceSystem": "12351",
        "sourceNo": case_no,
        "reply": None,
        "visit": None,
        "updateTime": _bj(updated),
    }
    if item.open:
        item.state, item.seq_12345 = "signed", 1
        item.actions = [
            ("12345", "create_order", "create_order", "applied"),
            ("12351", "external_ref", "external_ref", "applied"),
            ("12351", "partner_update:accepted", "partner_update", "applied"),
        ]
    else:
        order |= {
            "orderStatus": "50",
            "reply": {
                "content": "经核实，已处理完毕。",
                "handler": "区级承办人",
                "replyTime": _bj(created + (updated - created) / 2),
                "resolved": True,
            },
            "visit": {"visitTime": _bj(updated), "satisfaction": "1", "remark": None},
        }
        item.state, item.seq_12345 = "closed", 4
        item.actions = [
            ("12345", "create_order", "create_order", "applied"),
            ("12351", "external_ref", "external_ref", "applied"),
            ("12351", "partner_update:accepted", "partner_update", "applied"),
            ("12351", "partner_update:replied+satisfaction", "partner_update", "applied"),
            ("12351", "partner_update:closed", "partner_update", "applied"),
        ]
    item.order, item.case = order, case
    item.order_seen, item.case_seen = order, case


# --- what the ledger stores of an item ---------------------------------------------------


ORDER_FIELDS: Final = tuple(Order.model_fields)
REPLY_FIELDS: Final = tuple(Reply.model_fields)
VISIT_FIELDS: Final = tuple(Visit.model_fields)


def order_hash(order: dict[str, Any]) -> str:
    """The content hash the 12345 intake keeps in `feed_seen` (`Intake12345.take`:
    sha256 of `Order.model_dump_json()`), written out without pydantic: parsing the
    times back is most of the cost of a million. `check_order_hash` proves them equal."""
    doc = {k: order.get(k) for k in ORDER_FIELDS}
    if doc["reply"] is not None:
        doc["reply"] = {k: doc["reply"].get(k) for k in REPLY_FIELDS}
    if doc["visit"] is not None:
        doc["visit"] = {k: doc["visit"].get(k) for k in VISIT_FIELDS}
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def case_hash(case: dict[str, Any]) -> str:
    """What the 12351 intake keeps in `feed_seen` for a case: its content digest (a case
    fixed by hand keeps its version), computed by the intake's own function."""
    return _case_content(Case.model_validate(case))


def feed_positions(spec: Spec) -> list[dict[str, Any]]:
    """The feed positions a node's pollers would hold: each feed read up to a minute ago
    (so that every seeded change is older than what the feeds had read: missed)."""
    read = spec.now - timedelta(seconds=60)
    order_mark = FeedPosition(mark=read.astimezone(BEIJING).replace(tzinfo=None)).encode()
    case_mark = CasesPosition.since(read.astimezone(BEIJING)).encode()
    rows = [("12345", "dispatched", order_mark), ("12345", "created", order_mark)]
    rows.append(("12351", "cases", case_mark))
    return [{"system": s, "feed": f, "position": p, "updated_at": read} for s, f, p in rows]


def check_order_hash(order: dict[str, Any]) -> None:
    """`order_hash` is the intake's hash (raises AssertionError where it is not)."""
    record = Order.model_validate(order)
    expected = hashlib.sha256(record.model_dump_json().encode()).hexdigest()
    assert order_hash(order) == expected, f"order_hash differs for {order['orderNo']}"


class Snapshots:
    """The `last_snapshot` of a referral: the canonical snapshot of the record the bridge
    read last, made by the real mapping (settled referrals outside the window share a
    mapped template per content, with their own ids and times: nothing reads them)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.tables = MappingTables.from_config(None)
        self._templates: dict[tuple[str, int], dict[str, Any]] = {}

    def of(self, item: Item) -> dict[str, Any]:
        last_is_case = (
            item.origin == "12345" and item.state != "closed" and item.kind != ("state_mismatch")
        )
        if item.active:
            return self._mapped(item, last_is_case)
        key = (item.origin, item.index % POOL)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._mapped(item, last_is_case)
            return template
        snap = copy.copy(template)
        fresh = self._ids(item, last_is_case)
        snap.update(fresh)
        return snap

    def _ids(self, item: Item, last_is_case: bool) -> dict[str, Any]:
        assert item.order_seen is not None and item.case_seen is not None
        order_no, case = item.order_seen["orderNo"], item.case_seen
        numbers = {"12345": order_no, "12351": case["case_no"]}
        at = item.updated.astimezone(UTC).isoformat()
        return {
            "referral_id": item.referral_id,
            "source_no": case["case_no"] if last_is_case else order_no,
            "ids": {"12345": order_no, "12351": case["id"]},
            "numbers": numbers,
            "read_at": at,
            "updated_at": at,
        }

    def _mapped(self, item: Item, last_is_case: bool) -> dict[str, Any]:
        assert item.order_seen is not None and item.case_seen is not None
        read_at = item.updated.astimezone(UTC)
        if last_is_case or (item.origin == "12351" and item.order_seen is None):
            ref = case_to_referral(
                Case.model_validate(item.case_seen), read_at=read_at, tables=self.tables
            )
        else:
            ref = order_to_referral(
                Order.model_validate(item.order_seen),
                version=item.seq_12345,
                read_at=read_at,
                unit_code=self.spec.unit_code,
                tables=self.tables,
            )
        snap = ref.model_dump(mode="json")
        snap.update(self._ids(item, last_is_case) | {"source_no": snap["source_no"]})
        return snap


# --- what the simulators hold ------------------------------------------------------------


def load_simulators(sim12345: Any, sim12351: Any, spec: Spec) -> dict[str, int]:
    """Fill the simulators' books with every record of the world, as they stand now (the
    12351 feed holds one entry per case: its state as the bridge last could have read it,
    so that a change made without a feed entry stays invisible to the feed)."""
    book12345, book12351 = sim12345.book, sim12351.book
    orders, created_by, request_ids = book12345.orders, book12345.created_by, book12345.request_ids
    cases, by_no, events, partner_of = (
        book12351.cases,
        book12351._by_case_no,
        book12351.events,
        book12351.partner_of,
    )
    feed: list[tuple[str, dict[str, Any]]] = []
    for item in items(spec):
        if item.order is not None:
            orders[item.order["orderNo"]] = item.order
            if item.origin == "12351":
                created_by[item.order["orderNo"]] = spec.client_id
                request_ids[item.referral_id] = item.order["orderNo"]
        if item.case is not None:
            case = item.case
            cases[case["id"]] = case
            by_no[case["case_no"]] = case["id"]
            events[case["id"]] = []
            if item.origin == "12345" and item.in_ledger:
                partner_of[case["id"]] = SIM_CLIENT
            seen = item.case_seen if item.case_seen is not None else case
            entry = copy.copy(seen)
            if entry.get("transfer"):
                entry["transfer"] = dict(entry["transfer"])
            feed.append((seen["updated_at"], entry))
    feed.sort(key=lambda pair: pair[0])
    book12351.feed = [entry for _, entry in feed]
    book12351._feed_times = [datetime.fromisoformat(at) for at, _ in feed]
    if feed:
        book12351._last = datetime.fromisoformat(feed[-1][0])
    book12345._seq = book12351._seq = spec.n + spec.discrepancies + 1
    return {"orders": len(orders), "cases": len(cases), "feed": len(book12351.feed)}
