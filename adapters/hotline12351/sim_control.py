"""The 12351 simulator's own side: what the union's agents do (record cases, move them
through the workflow), hand fixes in its database, realistic random cases, and the
background workflow driver."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta
from typing import Annotated, Any, Final, Literal

import structlog
from pydantic import AfterValidator, Field, ValidationError

from adapters.hotline12351.sim_requests import (
    NonEmpty,
    Problem,
    StrictModel,
    Time,
    WorkerIn,
    check_district,
    parse_rfc3339,
    validate,
)
from adapters.hotline12351.sim_state import AGENT_STEPS, OPEN, CaseBook
from adapters.simdata import (
    CITY_SUBJECTS,
    EMPLOYERS,
    LABOUR_SUBJECTS,
    STREETS,
    content_text,
    mobile,
    person,
)
from schemas.hotline12351 import (
    DESCRIPTION_MAX,
    DISTRICT_CODES,
    SUBJECT_MAX,
    Case,
    CaseStatus,
    Priority,
    Satisfaction,
    ServiceType,
    rfc3339,
)

log = structlog.get_logger(__name__)
DEFAULT_AGENT: Final = "sim"


class WorkerRecord(WorkerIn):
    employer: str | None = None
    member_card_no: str | None = None
    is_member: bool | None = None


class TransferIn(StrictModel):
    to: NonEmpty
    reason: str | None = None
    category: str | None = None


class AgentCaseIn(StrictModel):
    """`POST /_sim/cases` with fields: a case an agent took by phone, app, …"""

    channel: Literal["phone", "app", "wechat", "walk_in"] = "phone"
    worker: WorkerRecord | None = None
    district_code: Annotated[str | None, AfterValidator(check_district)] = None
    service_type: ServiceType = "other"
    priority: Priority = "normal"
    subject: Annotated[str, Field(min_length=1, max_length=SUBJECT_MAX)]
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)] | None = None
    location: str | None = None
    transfer: TransferIn | None = None


class RandomCasesIn(StrictModel):
    count: int = Field(ge=1, le=10_000)
    transfer_share: float = Field(default=0.5, ge=0, le=1)


class _NoParams(StrictModel):
    pass


class RespondIn(StrictModel):
    text: NonEmpty
    resolved: bool = True


class CallbackIn(StrictModel):
    satisfaction: Satisfaction
    note: str | None = None


class RejectIn(StrictModel):
    reason: NonEmpty


class ExtensionIn(StrictModel):
    new_deadline: Time
    reason: str | None = None


STEP_PARAMS: Final[dict[str, type[StrictModel]]] = {
    "dispatch": _NoParams,
    "verify": _NoParams,
    "handle": _NoParams,
    "respond": RespondIn,
    "callback": CallbackIn,
    "close": _NoParams,
    "reject": RejectIn,
    "transfer": TransferIn,
    "request_extension": ExtensionIn,
}


def record_cases(book: CaseBook, body: Any) -> list[dict[str, Any]]:
    """`POST /_sim/cases`: `{"count": n, "transfer_share": s}` for random cases, else
    the fields of one case (plus `agent`, the recording agent's name)."""
    if isinstance(body, dict) and "count" in body:
        spec = validate(RandomCasesIn, body)
        return [
            book.record_agent_case(random_case(book.rng, spec.transfer_share), DEFAULT_AGENT)
            for _ in range(spec.count)
        ]
    if not isinstance(body, dict):
        raise Problem(422, "the body must be an object")
    fields = dict(body)
    agent = fields.pop("agent", DEFAULT_AGENT)
    case = validate(AgentCaseIn, fields)
    return [book.record_agent_case(case.model_dump(exclude_unset=True), str(agent))]


def agent_step(book: CaseBook, case_id: str, body: Any) -> dict[str, Any]:
    """`POST /_sim/cases/{id}/agent`: `{"action": a, "agent"?: name, ...params}`."""
    if not isinstance(body, dict) or body.get("action") not in AGENT_STEPS:
        raise Problem(422, "action must be one of " + ", ".join(AGENT_STEPS), [("/action", "")])
    params = dict(body)
    action = params.pop("action")
    agent = str(params.pop("agent", DEFAULT_AGENT))
    checked = validate(STEP_PARAMS[action], params)
    return book.agent_step(case_id, action, checked.model_dump(exclude_unset=True), agent)


FIXED_BY_THE_SYSTEM: Final = frozenset({"id", "case_no", "created_at", "updated_at", "version"})
STATUSES: Final = frozenset(CaseStatus.__args__)  # type: ignore[attr-defined]


def fix_case(book: CaseBook, case_id: str, body: Any) -> dict[str, Any]:
    """`POST /_sim/cases/{id}/fix`: case fields as a hand fix in the database writes them
    (`CaseBook.fix`). 422 for a field the case does not have or the system keeps
    (`FIXED_BY_THE_SYSTEM`), a status outside the spec's, or a case that no longer reads
    as a case."""
    case = book.get(case_id)
    if not isinstance(body, dict) or not body:
        raise Problem(422, "the body must be an object of case fields")
    wrong = sorted(set(body) - set(case) | set(body) & FIXED_BY_THE_SYSTEM)
    if wrong:
        raise Problem(422, "not fields a fix may change", [(f"/{k}", "") for k in wrong])
    if "status" in body and body["status"] not in STATUSES:
        raise Problem(422, "not a 12351 status", [("/status", str(body["status"]))])
    try:
        Case.model_validate(case | body)
    except ValidationError as exc:
        pointers = [("/" + "/".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
        raise Problem(422, "the fixed case would not be a case", pointers) from None
    return book.fix(case_id, body)


def _phone(rng: random.Random) -> str:
    m = mobile(rng)
    return rng.choice(
        [
            f"{m[:3]}-{m[3:7]}-{m[7:]}",
            f"+86 {m}",
            f"+86 {m[:3]} {m[3:7]} {m[7:]}",
            m,
            f"010 {rng.randint(5000, 8999)} {rng.randint(1000, 9999)}",
            f"010-{rng.randint(50000000, 89999999)}",
            "",
        ]
    )


def random_case(rng: random.Random, transfer_share: float) -> dict[str, Any]:
    """Fields of a realistic case an agent records; a share of them goes to 12345."""
    employer = rng.choice(EMPLOYERS)
    transferred = rng.random() < transfer_share
    if transferred:
        category, subject = rng.choice(CITY_SUBJECTS)
        service_type = "other"
    else:
        category, service_type, subject = rng.choice(LABOUR_SUBJECTS)
    fields: dict[str, Any] = {
        "channel": rng.choice(["phone", "phone", "phone", "app", "wechat", "walk_in"]),
        "worker": {
            "name": person(rng),
            "phone": _phone(rng),
            "employer": employer,
            "member_card_no": f"1100{rng.randint(10**11, 10**12 - 1)}"
            if rng.random() < 0.5
            else None,
            "is_member": rng.random() < 0.6,
            "confidential": rng.random() < 0.1,
        },
        "district_code": rng.choice(sorted(DISTRICT_CODES)) if rng.random() < 0.85 else None,
        "service_type": service_type,
        "priority": rng.choices(["normal", "high", "alert"], weights=[75, 20, 5])[0],
        "subject": subject,
        "description": content_text(rng, subject, employer),
        "location": f"{rng.choice(STREETS)}{rng.randint(1, 200)}号",
    }
    if transferred:
        fields["transfer"] = {
            "to": "12345",
            "reason": "不属于工会职责范围，转12345市民热线办理",
            "category": category if rng.random() < 0.8 else None,
        }
    return fields


class WorkflowDriver:
    """A background task that plays the union: records new cases at `cases_per_s` and
    moves the cases partners created along (dispatch → handle → respond, sometimes a
    rejection or an extension request; close after the partner's callback)."""

    TICK_S: Final = 0.1

    def __init__(self, book: CaseBook) -> None:
        self.book = book
        self.cases_per_s = 0.0
        self.transfer_share = 0.5
        self._task: asyncio.Task[None] | None = None
        self._due = 0.0

    def state(self) -> dict[str, Any]:
        return {"cases_per_s": self.cases_per_s, "transfer_share": self.transfer_share}

    async def set(self, cases_per_s: float, transfer_share: float | None = None) -> None:
        """Start (rate > 0), retune, or stop (rate 0) the driver."""
        self.cases_per_s = cases_per_s
        if transfer_share is not None:
            self.transfer_share = transfer_share
        if cases_per_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="sim12351.driver")
        elif cases_per_s <= 0:
            await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.TICK_S)
            try:
                self.tick(self.TICK_S)
            except Exception:
                log.exception("sim_driver.failed", system="12351")

    def tick(self, seconds: float) -> None:
        """One step of simulated work over `seconds` (also callable from tests)."""
        rng = self.book.rng
        self._due += self.cases_per_s * seconds
        while self._due >= 1:
            self._due -= 1
            self.book.record_agent_case(random_case(rng, self.transfer_share), DEFAULT_AGENT)
        for case_id in list(self.book.partner_of):
            case = self.book.cases[case_id]
            if rng.random() < 0.5:
                self._advance(case)

    def _advance(self, case: dict[str, Any]) -> None:
        rng, step = self.book.rng, None
        params: dict[str, Any] = {}
        status = case["status"]
        if status == "received":
            step = "dispatch"
        elif status == "dispatched":
            step = "verify" if rng.random() < 0.3 else "handle"
        elif status == "verifying":
            step = "handle"
        elif status == "handling":
            roll = rng.random()
            if roll < 0.05:
                step, params = "reject", {"reason": "经核实不属于工会受理范围"}
            elif roll < 0.12 and case["extension_request"] is None and case["origin"]:
                base = parse_rfc3339(case["origin"].get("deadline") or case["created_at"])
                step = "request_extension"
                params = {
                    "new_deadline": rfc3339(base + timedelta(days=3)),
                    "reason": "需协调用人单位，申请延期",
                }
            else:
                step = "respond"
                params = {"text": "已联系用人单位协调处理，职工诉求已落实。", "resolved": True}
        elif status == "callback_done":
            step = "close"
        if step is not None and status in (OPEN | {"callback_done"}):
            self.book.agent_step(case["id"], step, params, DEFAULT_AGENT)
