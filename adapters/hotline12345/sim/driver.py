"""A background workflow driver for the simulated 12345: what the city's side does on
its own while the bridge runs (for the demo, the end-to-end tests and the benchmark).

Each tick it dispatches new orders to the partner unit at `dispatch_per_s`, and when
`advance` is on it moves orders along as 12345 and its district units would: replied
orders are visited (mostly satisfied, some dissatisfied and then reopened), visited ones
closed, a few open ones withdrawn; partner-created orders are replied to by their
district unit, visited and closed. Only orders unchanged for `min_age_s` simulated
seconds are touched, so a reader sees every step.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

import structlog

from adapters.hotline12345.sim.data import REMARKS, satisfaction
from adapters.hotline12345.sim.state import BusinessError, OrderBook
from schemas.hotline12345 import TIME_FORMAT

log = structlog.get_logger(__name__)

TICK_S = 0.1
ACT_CHANCE = 0.5
WITHDRAW_CHANCE = 0.002


class WorkflowDriver:
    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.dispatch_per_s = 0.0
        self.advance = False
        self.min_age_s = 1.0
        self._credit = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def settings(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "dispatch_per_s": self.dispatch_per_s,
            "advance": self.advance,
            "min_age_s": self.min_age_s,
        }

    def configure(self, dispatch_per_s: float, advance: bool, min_age_s: float = 1.0) -> None:
        """Start, retune, or (nothing to do) stop the driver."""
        self.dispatch_per_s, self.advance, self.min_age_s = dispatch_per_s, advance, min_age_s
        if dispatch_per_s <= 0 and not advance:
            return
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="sim12345.driver")

    async def stop(self) -> None:
        self.dispatch_per_s, self.advance = 0.0, False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while self.dispatch_per_s > 0 or self.advance:
            try:
                self.tick()
            except Exception:
                log.exception("sim12345.driver_failed")
            await asyncio.sleep(TICK_S)

    def tick(self) -> None:
        """One step of the simulated city: dispatch, then move orders along."""
        self._credit += self.dispatch_per_s * TICK_S
        now = self.book.now()
        while self._credit >= 1:
            self._credit -= 1
            self.book.dispatch(now=now)
        if self.advance:
            for order in list(self.book.orders.values()):
                if self._ripe(order, now) and self.book.rng.random() < ACT_CHANCE:
                    with contextlib.suppress(BusinessError):
                        self._step(order)

    def _ripe(self, order: dict[str, Any], now: datetime) -> bool:
        changed = datetime.strptime(order["updateTime"], TIME_FORMAT)
        return now - changed >= timedelta(seconds=self.min_age_s)

    def _step(self, order: dict[str, Any]) -> None:
        book, rng, no, status = self.book, self.book.rng, order["orderNo"], order["orderStatus"]
        partner_created = no in book.created_by
        if status == "30":
            if order["reply"] and order["reply"]["resolved"] is False and rng.random() < 0.5:
                book.reopen(no, "反馈未解决，请重新办理")
            else:
                mood = satisfaction(rng)
                book.visit(no, mood, REMARKS[int(mood) - 1])
        elif status == "40":
            if order["visit"]["satisfaction"] == "3" and rng.random() < 0.7:
                book.reopen(no, "来电人不满意，重新办理")
            else:
                book.close(no)
        elif partner_created and status in ("20", "25"):
            unit = f"unit:{order['unitCode']}"
            resolved = rng.random() < 0.9
            book.reply(no, "经核实，已联系相关单位处理。", "区级承办人", resolved, unit)
        elif status in ("10", "20") and rng.random() < WITHDRAW_CHANCE:
            book.withdraw(no)
