"""A throwaway fourth partner kind, registered from this module alone: the registry holds.

The kind `ledgerbook` is a minimal adapter over an in-memory book of records, a mapping
to and from the canonical referral, and its side's policies; nothing under `bridge/`
knows it. A node running 12351 and the partner `book9` (of that kind) carries a 12351
case transferred to `book9` there and its answer back, and a request `book9` refers to
the union to 12351 and the union's response back, through the real engine, store and
RabbitMQ, with the 12351 simulator over HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from harness import running_node, wait_until
from pydantic import BaseModel
from sim_actions import agent, record_case

from adapters.base import Action, ActionResult, FeedPage
from adapters.errors import AdapterError, NotFound
from bridge import partners
from bridge.demo import Simulators
from bridge.engine.intake import Intake
from bridge.engine.planner import Plan, Step
from bridge.mapping import MappingTables
from bridge.partners import PartnerKind, Side, SideContext
from bridge.store import Tx
from schemas.canonical import Caller, Lifecycle, Priority, Referral, Reply, referral_id

pytestmark = pytest.mark.one_store  # its subject is the registry, not the store

KIND: Final = "ledgerbook"
NAME: Final = "book9"
UNION: Final = "12351"
STATES: Final[Mapping[str, Lifecycle]] = {
    "open": Lifecycle.SIGNED,
    "answered": Lifecycle.REPLIED,
    "referred": Lifecycle.DELIVERED,
}


class BookConfig(BaseModel):
    book: str


@dataclass
class Book:
    """The partner's whole system: records by id, each change a new version."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def put(self, **fields: Any) -> dict[str, Any]:
        record_id = fields.get("id") or f"BOOK-{next(self._ids)}"
        old = self.records.get(record_id, {"version": 0})
        record = {**old, **fields, "id": record_id, "version": old["version"] + 1}
        record["no"] = record_id  # the partner's number is its id
        record["updated_at"] = datetime.now(UTC).isoformat()
        self.records[record_id] = record
        self.changes.append(record_id)
        return record


BOOKS: dict[str, Book] = {}


class CreateRecord(BaseModel):
    external_ref: str
    subject: str


class Answer(BaseModel):
    text: str


class BookHotline:
    """`adapters.base.Hotline` over a `Book`: one feed of its changes."""

    feeds = ("changes",)
    window_current = True
    budget = None

    def __init__(self, name: str, book: Book) -> None:
        self.system = name
        self.book = book

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[dict[str, Any]]:
        start = int(position or 0)
        ids = self.book.changes[start:]
        return FeedPage([dict(self.book.records[i]) for i in ids], str(start + len(ids)))

    def window_position(self, feed: str, since: datetime) -> str:
        return "0"

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        return None

    async def fetch(self, native_id: str) -> dict[str, Any]:
        try:
            return dict(self.book.records[native_id])
        except KeyError:
            raise NotFound(self.system, "no such record") from None

    async def perform(self, action: Action) -> ActionResult:
        self.book.calls.append(action.kind)
        if action.kind == "create_record":
            body = action.body
            assert isinstance(body, CreateRecord)
            for record in self.book.records.values():  # idempotent by external_ref
                if record.get("external_ref") == body.external_ref:
                    return ActionResult(record["id"], replayed=True)
            made = self.book.put(status="open", **body.model_dump())
            return ActionResult(made["id"])
        assert action.kind == "union_answer" and action.target is not None
        assert isinstance(action.body, Answer)
        self.book.put(id=action.target, union_answer=action.body.text)
        return ActionResult(action.target)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def to_referral(name: str, record: dict[str, Any], read_at: datetime) -> Referral:
    """A record → the canonical snapshot (pure)."""
    referred = record.get("external_ref") is None
    origin = name if referred else UNION
    no = record["no"] if referred else record["external_ref"]
    reply = record.get("answer")
    return Referral(
        referral_id=referral_id(origin, no),
        origin=origin,
        source=name,
        target=UNION,
        source_version=record["version"],
        source_no=record["no"],
        ids={name: record["id"]},
        numbers={name: record["no"]},
        read_at=read_at,
        state=STATES[record["status"]],
        native_status=record["status"],
        priority=Priority.NORMAL,
        caller=Caller(name=record.get("caller")),
        subject=record.get("subject", ""),
        text=record.get("text", ""),
        deadline=read_at + timedelta(days=7) if referred else None,
        updated_at=datetime.fromisoformat(record["updated_at"]),
        reply=Reply(text=reply) if reply else None,
    )


class BookIntake:
    def __init__(self, name: str, tables: MappingTables) -> None:
        self.system, self.tables = name, tables

    def with_tables(self, tables: MappingTables) -> BookIntake:
        return BookIntake(self.system, tables)

    async def take(
        self,
        feed: str,
        record: dict[str, Any],
        tx: Tx,
        read_at: datetime,
        *,
        force: bool = False,
        current: bool = False,
    ) -> Intake | None:
        seen = await tx.get_seen(self.system, record["id"])
        if seen is not None and seen.seq >= record["version"] and not force:
            return None
        await tx.put_seen(self.system, record["id"], str(record["version"]), record["version"])
        ref = to_referral(self.system, record, read_at)
        return Intake(ref, mapping=self.tables.version, target=UNION)

    def native_key(self, record: dict[str, Any]) -> str:
        return record["id"]

    def dump(self, record: dict[str, Any]) -> dict[str, Any]:
        return dict(record)

    def fetch_key(self, record: dict[str, Any]) -> str:
        return record["id"]

    def parse(self, data: dict[str, Any]) -> dict[str, Any]:
        return dict(data)

    def referral_of(self, record: dict[str, Any]) -> str:
        return to_referral(self.system, record, datetime.now(UTC)).referral_id

    def missing_actions(
        self, record: dict[str, Any], actions: Mapping[str, tuple[str, str]]
    ) -> list[str]:
        return []


class BookApply:
    def __init__(self, name: str, hotline: BookHotline, tables: MappingTables) -> None:
        self.system, self.hotline, self.tables = name, hotline, tables

    def with_tables(self, tables: MappingTables) -> BookApply:
        return BookApply(self.system, self.hotline, tables)

    async def plan(self, ref: Referral, done: frozenset[str], tx: Tx) -> Plan:
        if ref.origin == UNION:  # a union case transferred here
            if await tx.lookup_created(self.system, ref.source_no) is not None:
                return []
            return [
                Step(
                    "create_record",
                    "create_record",
                    None,
                    CreateRecord(external_ref=ref.source_no, subject=ref.subject),
                )
            ]
        if ref.reply is None:  # a request of ours at the union: only its answer comes back
            return []
        record_id = ref.ids[self.system]
        answer = Answer(text=ref.reply.text)
        return [Step("union_answer", f"answer:{ref.reopen_count}", record_id, answer)]

    async def took_effect(self, step: Step, target: str, error: AdapterError) -> bool:
        return False

    async def resolve_conflict(self, step: Step, ref: Referral, tx: Tx) -> str | None:
        return await tx.lookup_created(self.system, ref.source_no)

    async def after_create(self, ref: Referral, native_id: str, tx: Tx) -> None:
        await tx.put_created(self.system, ref.source_no, native_id)


class BookView:
    """How the union reads this partner's snapshots."""

    def service_type(self, ref: Referral, tables: MappingTables) -> str:
        return "other"

    def partner_status(self, ref: Referral, tables: MappingTables) -> tuple[str, bool] | None:
        return {"open": ("accepted", False), "answered": ("replied", False)}.get(ref.native_status)


def build_side(ctx: SideContext) -> Side:
    hotline = BookHotline(ctx.name, BOOKS[ctx.config.book])
    return Side(
        ctx.name,
        hotline,  # type: ignore[arg-type]
        BookIntake(ctx.name, ctx.tables),  # type: ignore[arg-type]
        BookApply(ctx.name, hotline, ctx.tables),  # type: ignore[arg-type]
    )


BOOK_KIND = PartnerKind(kind=KIND, config_model=BookConfig, build_side=build_side, union=BookView())


@pytest.fixture
def book(tmp_path: Any) -> Iterator[Book]:
    partners.register(BOOK_KIND)
    key = tmp_path.name
    BOOKS[key] = Book()
    try:
        yield BOOKS[key]
    finally:
        BOOKS.pop(key, None)
        partners.unregister(KIND)


def _node(sims: Simulators, tmp_path: Any, book: Book) -> Any:
    key = next(k for k, v in BOOKS.items() if v is book)
    return running_node(
        sims,
        tmp_path,
        sides=["12351", NAME],
        partners_sections={NAME: {"kind": KIND, "book": key}},
    )


async def test_a_case_crosses_to_a_fourth_partner_and_its_answer_comes_back(
    sims: Simulators, tmp_path: Any, book: Book
) -> None:
    async with _node(sims, tmp_path, book):
        case = record_case(sims, transfer={"to": NAME, "reason": "不属于工会职责"})

        def made() -> list[dict[str, Any]]:
            return [r for r in book.records.values() if r.get("external_ref") == case["case_no"]]

        await wait_until(made, what="the record made at the fourth partner")
        record = made()[0]
        await wait_until(lambda: _updates(sims, case["id"]) == ["accepted"], what="accepted")
        book.put(id=record["id"], status="answered", answer="已由本部门答复")
        await wait_until(
            lambda: _updates(sims, case["id"]) == ["accepted", "replied"], what="replied"
        )
        refs = [e for e in _events(sims, case["id"]) if e["type"] == "external_ref"]
        assert [(e["body"]["system"], e["body"]["external_no"]) for e in refs] == [
            (NAME, record["no"])
        ]
        assert book.calls == ["create_record"]  # once: no duplicate, nothing needless


async def test_a_fourth_partners_referral_reaches_the_union_and_the_response_goes_back(
    sims: Simulators, tmp_path: Any, book: Book
) -> None:
    async with _node(sims, tmp_path, book):
        referred = book.put(status="referred", subject="残疾职工工资争议", text="职工反映欠薪。")
        await wait_until(lambda: cases_from_partner(sims, referred["no"]), what="the 12351 case")
        case = cases_from_partner(sims, referred["no"])[0]
        assert case["origin"]["system"] == NAME and case["service_type"] == "other"
        await agent(sims, case["id"], "dispatch")
        await agent(sims, case["id"], "handle")
        await agent(sims, case["id"], "respond", text="已协调企业支付工资")
        await wait_until(lambda: book.records[referred["id"]].get("union_answer"), what="answer")
        assert book.records[referred["id"]]["union_answer"] == "已协调企业支付工资"
        assert book.calls == ["union_answer"]


def cases_from_partner(sims: Simulators, number: str) -> list[dict[str, Any]]:
    return [
        c
        for c in sims.sim12351.cases.values()
        if (c.get("origin") or {}).get("external_no") == number
    ]


def _events(sims: Simulators, case_id: str) -> list[dict[str, Any]]:
    return list(sims.sim12351.events.get(case_id, []))


def _updates(sims: Simulators, case_id: str) -> list[str]:
    return [e["body"]["status"] for e in _events(sims, case_id) if e["type"] == "partner_update"]
