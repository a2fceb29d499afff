"""The 12351 simulator's own side: what the union's agents do (record cases, move them
through the workflow), hand fixes in its database, realistic random cases, and the
background workflow driver."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import structlog
from pydantic import AfterValidator, Field, ValidationError

from adapters.hotline12351.sim.data import random_case
from adapters.hotline12351.sim.requests import (
    NonEmpty,
    Problem,
    StrictModel,
    Time,
    WorkerIn,
    check_district,
    validate,
)
from adapters.hotline12351.sim.state import AGENT_STEPS, CaseBook
from schemas.hotline12351 import (
    DESCRIPTION_MAX,
    SUBJECT_MAX,
    Case,
    CaseStatus,
    Priority,
    Satisfaction,
    ServiceType,
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
