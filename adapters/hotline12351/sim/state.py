"""The 12351 simulator's world: cases, their timelines, the change feed and its cursors,
and every rule of the spec about what an event or an agent's step may change.

Every change bumps the case's `version`, stamps `updated_at`, appends one timeline event
and one feed entry (a copy of the case right after the change), except a hand fix in the
union's database (`fix`), which changes the case and nothing else. Rule breaches raise
`Problem` (rendered as problem+json by the API layer).
"""

from __future__ import annotations

import bisect
import copy
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from adapters.hotline12351.sim.requests import CreateIn, Problem, parse_rfc3339
from adapters.simkit import SimClock
from schemas.hotline12351 import rfc3339

CURSOR_TTL: Final = timedelta(days=7)
OPEN: Final = frozenset({"received", "dispatched", "verifying", "handling"})
# agent step → (statuses it may start from, status after it or None: unchanged, event type)
AGENT_STEPS: Final[dict[str, tuple[frozenset[str], str | None, str]]] = {
    "dispatch": (frozenset({"received"}), "dispatched", "dispatched"),
    "verify": (frozenset({"dispatched"}), "verifying", "verifying"),
    "handle": (frozenset({"dispatched", "verifying"}), "handling", "handling"),
    "respond": (frozenset({"handling"}), "responded", "responded"),
    "callback": (frozenset({"responded"}), "callback_done", "callback_done"),
    "close": (OPEN | {"responded", "callback_done"}, "closed", "closed"),
    "reject": (OPEN, "rejected", "rejected"),
    "transfer": (OPEN, "transferred", "transferred"),
    "request_extension": (OPEN - {"received"}, None, "extension_requested"),
}


@dataclass
class _Cursor:
    offset: int
    issued_at: datetime
    expired: bool = False


class CaseBook:
    """All cases of the simulated 12351, in memory."""

    def __init__(self, clock: SimClock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self.cases: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.feed: list[dict[str, Any]] = []
        self.partner_of: dict[str, str] = {}  # case id → the client that created it
        self._feed_times: list[datetime] = []
        self._by_case_no: dict[str, str] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._seq = 0
        self._last: datetime | None = None

    # --- creating --------------------------------------------------------------------

    def create_partner_case(self, req: CreateIn, client: str) -> dict[str, Any]:
        """`POST /cases`: a partner's case, `received`, at district level unless no
        district was given (then city)."""
        worker = req.worker.model_dump() if req.worker else {}
        case = self._new_case(
            channel=req.channel,
            worker=worker,
            district_code=req.district_code,
            service_type=req.service_type,
            priority=req.priority,
            subject=req.subject,
            description=req.description,
            location=req.location,
            origin=req.origin.model_dump(),
        )
        self.partner_of[case["id"]] = client
        return self._created(case, f"partner:{client}")

    def record_agent_case(self, fields: dict[str, Any], agent: str) -> dict[str, Any]:
        """An agent records a case taken by phone, app, …; `fields` are already checked."""
        transfer = fields.pop("transfer", None)
        case = self._new_case(**fields)
        self._created(case, f"agent:{agent}")
        if transfer is not None:
            self.agent_step(case["id"], "transfer", transfer, agent)
        return case

    def _new_case(self, **fields: Any) -> dict[str, Any]:
        now = self._now()
        self._seq += 1
        worker = {
            "name": None,
            "phone": None,
            "employer": None,
            "member_card_no": None,
            "is_member": None,
            "confidential": False,
        } | (fields.pop("worker", None) or {})
        district = fields.get("district_code")
        return {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "case_no": f"12351-{self.clock.now_beijing().year}-{self._seq:07d}",
            "channel": "phone",
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "worker": worker,
            "district_code": None,
            "level": "district" if district else "city",
            "service_type": "other",
            "priority": "normal",
            "subject": "",
            "description": None,
            "location": None,
            "status": "received",
            "response": None,
            "callback": None,
            "rejection_reason": None,
            "reopen_count": 0,
            "transfer": None,
            "extension_request": None,
            "origin": None,
        } | fields

    def _created(self, case: dict[str, Any], actor: str) -> dict[str, Any]:
        self.cases[case["id"]] = case
        self._by_case_no[case["case_no"]] = case["id"]
        self.events[case["id"]] = []
        self._log(case, "created", actor, {"channel": case["channel"]})
        return case

    # --- reading ---------------------------------------------------------------------

    def get(self, case_id: str) -> dict[str, Any]:
        case = self.cases.get(case_id)
        if case is None:
            raise Problem(404, f"no case {case_id}")
        return case

    def find(self, case_no: str) -> list[dict[str, Any]]:
        case_id = self._by_case_no.get(case_no)
        return [self.cases[case_id]] if case_id else []

    def page(self, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str]:
        """Feed entries after `cursor` (None: the start) and the cursor after them; an
        empty page returns the same cursor. 410 for a cursor past its 7 days."""
        if cursor is None:
            return self._page_from(0, limit, None)
        state = self._cursors.get(cursor)
        if state is None:
            raise Problem(400, "unknown cursor", [("/cursor", "not a cursor this API issued")])
        if state.expired or self.clock.now() - state.issued_at > CURSOR_TTL:
            state.expired = True
            raise Problem(410, "the cursor has expired; restart with changed_since")
        return self._page_from(state.offset, limit, cursor)

    def page_since(self, when: datetime, limit: int) -> tuple[list[dict[str, Any]], str]:
        """The feed restarted at the first change with `updated_at >= when`."""
        return self._page_from(bisect.bisect_left(self._feed_times, when), limit, None)

    @property
    def cursor_count(self) -> int:
        return len(self._cursors)

    def expire_cursors(self) -> int:
        for state in self._cursors.values():
            state.expired = True
        return len(self._cursors)

    def _page_from(
        self, offset: int, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        items = self.feed[offset : offset + limit]
        if items or cursor is None:
            cursor = f"c{self.rng.getrandbits(96):024x}"
            self._cursors[cursor] = _Cursor(offset + len(items), self.clock.now())
        return [copy.deepcopy(i) for i in items], cursor

    # --- partner events --------------------------------------------------------------

    def apply_event(
        self, case_id: str, type_: str, body: dict[str, Any], client: str
    ) -> dict[str, Any]:
        """A partner's event, by the spec's rules; a no-op leaves no trace at all."""
        case = self.get(case_id)
        status = case["status"]
        own = self.partner_of.get(case_id) == client
        if type_ == "external_ref":
            transfer = case["transfer"] or {}
            if status != "transferred" or transfer.get("to") != body["system"]:
                raise Problem(409, f"case is not transferred to {body['system']}")
            if transfer.get("external_no") == body["external_no"]:
                return case
            if transfer.get("external_no"):
                raise Problem(409, f"case already has external number {transfer['external_no']}")
            transfer["external_no"] = body["external_no"]
        elif type_ == "callback_result":
            if own and status == "responded":
                case["status"] = "callback_done"
                case["callback"] = {k: body.get(k) for k in ("at", "satisfaction", "note")}
        elif type_ == "withdrawn":
            if not own:
                raise Problem(409, "only the partner that created a case can withdraw it")
            if status in ("closed", "rejected"):
                return case
            case["status"] = "closed"
        elif type_ == "reopened":
            if not own or status not in ("responded", "callback_done"):
                raise Problem(409, f"cannot reopen a {status} case that is not the partner's own")
            case["status"] = "handling"
            case["reopen_count"] += 1
            case["response"] = None
            case["callback"] = None
        # partner_update: the timeline only
        self._change(case, type_, f"partner:{client}", body)
        return case

    # --- the union's agents ----------------------------------------------------------

    def agent_step(
        self, case_id: str, action: str, params: dict[str, Any], agent: str
    ) -> dict[str, Any]:
        """One step of the union's workflow (see `AGENT_STEPS`); 409 when the case's
        status (or, for an extension, its origin) does not allow it."""
        case = self.get(case_id)
        sources, target, event_type = AGENT_STEPS[action]
        if case["status"] not in sources:
            raise Problem(409, f"cannot {action} a {case['status']} case")
        now = self._now()
        if action == "respond":
            case["response"] = {
                "text": params["text"],
                "responder": agent,
                "responded_at": now,
                "resolved": params.get("resolved", True),
            }
        elif action == "callback":
            case["callback"] = {"at": now} | params
        elif action == "reject":
            case["rejection_reason"] = params["reason"]
        elif action == "transfer":
            case["transfer"] = {
                "to": params["to"],
                "reason": params.get("reason"),
                "category": params.get("category"),
                "requested_at": now,
                "external_no": None,
            }
        elif action == "request_extension":
            if case["origin"] is None or case["extension_request"] is not None:
                raise Problem(409, "an extension is asked once, on a partner's case")
            case["extension_request"] = {
                "new_deadline": params["new_deadline"],
                "reason": params.get("reason"),
                "requested_at": now,
            }
        if target is not None:
            case["status"] = target
        self._change(case, event_type, f"agent:{agent}", params)
        return case

    def fix(self, case_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A hand fix in the database: `fields` replace the case's as given (checked by
        the caller), while `version`, `updated_at`, the timeline and the feed stay as they
        were: no `changed_since` read ever shows it, only `GET /cases/{id}`."""
        case = self.get(case_id)
        case.update(copy.deepcopy(fields))
        return case

    # --- bookkeeping -----------------------------------------------------------------

    def _now(self) -> str:
        # Never earlier than the last change, so the feed is in `updated_at` order.
        now = self.clock.now_beijing()
        self._last = now if self._last is None else max(now, self._last)
        return rfc3339(self._last)

    def _change(self, case: dict[str, Any], type_: str, actor: str, body: dict) -> None:
        case["version"] += 1
        case["updated_at"] = self._now()
        self._log(case, type_, actor, body)

    def _log(self, case: dict[str, Any], type_: str, actor: str, body: dict) -> None:
        self.events[case["id"]].append(
            {
                "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "type": type_,
                "at": case["updated_at"],
                "actor": actor,
                "body": copy.deepcopy(body),
            }
        )
        self.feed.append(copy.deepcopy(case))
        self._feed_times.append(parse_rfc3339(case["updated_at"]))
