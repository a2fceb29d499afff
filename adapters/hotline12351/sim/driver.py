"""The 12351 simulator's workflow driver: it plays the union's agents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from adapters.hotline12351.sim.control import DEFAULT_AGENT
from adapters.hotline12351.sim.data import random_case
from adapters.hotline12351.sim.requests import (
    parse_rfc3339,
)
from adapters.hotline12351.sim.state import OPEN, CaseBook
from adapters.simkit import TickingDriver
from schemas.hotline12351 import (
    rfc3339,
)

log = structlog.get_logger(__name__)


class WorkflowDriver(TickingDriver):
    """A background task that plays the union: records new cases at `cases_per_s` and
    moves the cases partners created along (dispatch → handle → respond, sometimes a
    rejection or an extension request; close after the partner's callback)."""

    NAME = "sim12351"
    TICK_S = 0.1

    def __init__(self, book: CaseBook) -> None:
        super().__init__()
        self.book = book
        self.cases_per_s = 0.0
        self.transfer_share = 0.5

    def state(self) -> dict[str, Any]:
        return {"cases_per_s": self.cases_per_s, "transfer_share": self.transfer_share}

    async def set(self, cases_per_s: float, transfer_share: float | None = None) -> None:
        """Start (rate > 0), retune, or stop (rate 0) the driver."""
        self.cases_per_s = cases_per_s
        if transfer_share is not None:
            self.transfer_share = transfer_share
        await self.switch(cases_per_s > 0)

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
