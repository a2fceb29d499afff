"""What people do on each hotline, driven through the simulators' control APIs over
HTTP: 12345 dispatches, visits, reopens, withdraws, closes; its district units sign and
reply to partner orders; 12351 agents move cases along."""

from __future__ import annotations

from typing import Any

from bridge.demo import Simulators


async def dispatch(sims: Simulators, **fields: Any) -> str:
    """12345 dispatches one order to the union's unit; returns its number."""
    body = {"unitCode": sims.unit_code, **fields}
    result = await sims.control("12345", "POST", "/orders", body)
    return _first_order_no(result)


async def order_action(sims: Simulators, order_no: str, action: str, **body: Any) -> Any:
    """12345 itself acts on an order: visit, reopen, withdraw, close."""
    return await sims.control("12345", "POST", f"/orders/{order_no}/{action}", body)


async def unit_action(sims: Simulators, order_no: str, action: str, **body: Any) -> Any:
    """A 12345 district unit acts on an order a partner created: sign, reply, …"""
    return await sims.control("12345", "POST", f"/orders/{order_no}/{action}", body)


async def agent(sims: Simulators, case_id: str, action: str, **params: Any) -> Any:
    """A 12351 agent moves a case along its workflow."""
    return await sims.control(
        "12351", "POST", f"/cases/{case_id}/agent", {"action": action, **params}
    )


def _first_order_no(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, list):
        return _first_order_no(result[0])
    for key in ("orderNo", "orderNos", "items", "orders"):
        if key in result:
            return _first_order_no(result[key])
    raise AssertionError(f"no order number in the simulator's answer: {list(result)}")


CASE: dict[str, Any] = {
    "subject": "宿舍暖气不热",
    "description": "职工反映宿舍暖气不热。",
    "district_code": "110105",
    "service_type": "other",
    "priority": "normal",
    "worker": {"name": "李某", "phone": "13812345678"},
}
"""A worker's case as a union agent records it (realistic, not the union's remit)."""


def record_case(sims: Simulators, **changes: Any) -> dict[str, Any]:
    """A 12351 agent records a case and hands it to 12345 (unless `transfer` says else)."""
    fields = {**CASE, "transfer": {"to": "12345", "reason": "城市管理"}, **changes}
    return sims.sim12351.record_case(**fields)


def refused_calls(sims: Simulators) -> list[str]:
    """Every call either simulator refused (not what faults or the rate limit answered),
    one line each: `12345 POST /orders/{orderNo}/sign 40002 <message> (<client>)`."""
    return [
        f"{system} {r.route} {r.code} {r.message} ({r.client})"
        for system, sim in (("12345", sims.sim12345), ("12351", sims.sim12351))
        for r in sim.refusals
    ]
