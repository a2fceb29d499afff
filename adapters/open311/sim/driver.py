"""The 12385 simulator's driver: it plays the 12385 staff, off by default."""

from __future__ import annotations

import contextlib
from typing import Any, Final

import structlog

from adapters.open311.sim.control import staff_request
from adapters.open311.sim.requests import Refused
from adapters.open311.sim.state import RequestBook
from adapters.simkit import TickingDriver
from schemas.open311 import HOME_AGENCY

log = structlog.get_logger(__name__)

# What staff write on a partner's request, by its status and the latest update's.
_ANSWER: Final = ("fixed", "已联系相关单位落实，诉求已解决。")
_NOT_OURS: Final = ("not_councils_responsibility", "经核实不属于残联职责范围，退回。")


class StaffDriver(TickingDriver):
    """A background task that plays 12385: takes `requests_per_min` requests by phone,
    refers a share of them to `partners`, takes partners' requests in hand, answers
    (sometimes sends back) and closes them, and closes referred ones the partner fixed."""

    NAME = "sim12385"
    TICK_S = 0.5

    def __init__(self, book: RequestBook, partners: tuple[str, ...] = ("12351", "12345")) -> None:
        super().__init__()
        self.book = book
        self.partners = partners
        self.requests_per_min = 0.0
        self.referral_share = 0.5

    def state(self) -> dict[str, Any]:
        return {"requests_per_min": self.requests_per_min, "referral_share": self.referral_share}

    async def set(self, requests_per_min: float, referral_share: float | None = None) -> None:
        """Start (rate > 0), retune, or stop (rate 0) the driver."""
        self.requests_per_min = requests_per_min
        if referral_share is not None:
            self.referral_share = referral_share
        await self.switch(requests_per_min > 0)

    def tick(self, seconds: float) -> None:
        """One step of staff work over `seconds` (also callable from tests)."""
        rng = self.book.rng
        self._due += self.requests_per_min * seconds / 60
        while self._due >= 1:
            self._due -= 1
            request = staff_request(self.book, {})
            if rng.random() < self.referral_share:
                self.book.refer(request["service_request_id"], rng.choice(self.partners))
        for request_id, meta in list(self.book.meta.items()):
            if rng.random() < 0.3 and self.book.exists(request_id):
                with contextlib.suppress(Refused):
                    self._advance(request_id, meta.created_by)

    def _advance(self, request_id: str, created_by: str | None) -> None:
        request = self.book.requests[request_id]
        last = self._last_status(request_id)
        if created_by is not None:
            if request["status"] == "closed":
                return
            if last is None:
                self.book.staff_update(request_id, "in_progress", "已受理，正在办理。")
            elif last == "in_progress":
                status, text = _NOT_OURS if self.book.rng.random() < 0.1 else _ANSWER
                self.book.staff_update(request_id, status, text)
            elif last == "fixed":
                self.book.staff_update(request_id, "closed", "已回访，办结。")
        elif request["agency_responsible"] != HOME_AGENCY and last == "fixed":
            # The partner answered; now and then the requester is not satisfied.
            if self.book.rng.random() < 0.1:
                self.book.staff_update(request_id, "reopen", "回访不满意，重新办理。")

    def _last_status(self, request_id: str) -> str | None:
        for update in reversed(self.book.updates):
            if update.json["service_request_id"] == request_id:
                return str(update.json["status"])
        return None
