"""The 12345 municipal hotline as a partner kind: its adapter, its side's policies
(`side.py`, `plan.py`), its SLA deadlines (`sla.py`), its simulator, and how the union's
side reads its snapshots. The 12345 ↔ 12351 tables (categories, order statuses,
satisfaction codes, urgencies) are this pair's, kept with the partner rather than the
union: the union's module reads them only through `UnionView`.

Registered in `bridge/app.py`; its config is the contract's `[hotline12345]` section.
"""

from __future__ import annotations

from typing import Any, Final

from adapters.hotline12345.adapter import Hotline12345
from adapters.hotline12345.config import Hotline12345Config
from bridge.mapping import MappingTables
from bridge.partners import (
    PartnerKind,
    RunningSim,
    Side,
    SideContext,
    SimOption,
    SimOptions,
    Simulator,
    serve_sim,
)
from bridge.partners.hotline12345 import sla
from bridge.partners.hotline12345.side import Apply12345, Intake12345
from schemas.canonical import Referral

NAME: Final = "12345"


class UnionView:
    """How the union's side reads a 12345 snapshot (ARCHITECTURE.md's tables)."""

    def service_type(self, ref: Referral, tables: MappingTables) -> str:
        return tables.service_type_for(ref.classification.get(NAME, ""))

    def partner_status(self, ref: Referral, tables: MappingTables) -> tuple[str, bool] | None:
        status = tables.partner_status_for(ref.native_status, ref.reopen_count)
        return None if status is None else (status, ref.native_status == "40")


def build_side(ctx: SideContext) -> Side:
    config: Hotline12345Config = ctx.config
    hotline = Hotline12345(ctx.session, config)
    hotline.system = ctx.name  # the partner's name in this deployment
    union = ctx.deployment.union or config.source_system
    return Side(
        ctx.name,
        hotline,
        Intake12345(unit_code=config.unit_code, tables=ctx.tables, union=union),
        Apply12345(hotline=hotline, handler=ctx.settings.bridge.handler_name, tables=ctx.tables),
        hotline.budget,
    )


async def start_simulator(opts: SimOptions) -> RunningSim:
    from adapters.hotline12345.sim.server import Simulator12345

    values = opts.values
    sim = Simulator12345(
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        unit_code=values["unit_code"],
        rate_limit_per_s=20 if opts.rate_limits else None,
        seed=opts.seed,
    )
    root, stop = await serve_sim(sim.make_app(), opts.host, opts.port)
    config: dict[str, Any] = {
        "base_url": f"{root}/api/v2",
        "client_id": values["client_id"],
        "client_secret": values["client_secret"],
        "unit_code": values["unit_code"],
        **({} if opts.rate_limits else {"rate_limit_rps": 0}),
    }
    return RunningSim(opts.name, root, config["base_url"], config, sim, stop)


def _summary(sim: Any) -> str:
    orders = sim.orders.values()
    to_union = [o for o in orders if o.get("unitCode") == sim.unit_code]
    signed = sum(1 for o in to_union if o.get("orderStatus") != "10")
    created = sum(1 for o in orders if o.get("sourceSystem"))
    return f"{len(to_union)} dispatched to the union, {signed} signed, {created} created"


KIND = PartnerKind(
    kind=NAME,
    config_model=Hotline12345Config,
    build_side=build_side,
    secrets=("client_secret",),
    default_name=NAME,
    legacy_section="hotline12345",
    union=UnionView(),
    deadlines=sla.deadlines_of,
    sla_kinds=tuple((system, kind) for kind, system in sla.KIND_SYSTEM.items()),
    simulator=Simulator(
        default_port=8345,
        start=start_simulator,
        options=(
            SimOption("client_id", "demo-client", "12345 client id", alias="--client-id"),
            SimOption(
                "client_secret", "demo-secret", "12345 client secret", alias="--client-secret"
            ),
            SimOption("unit_code", "BJZGH", "the union's unit code", alias="--unit-code"),
        ),
        drive=lambda per_s: ("/driver", {"dispatch_per_s": per_s}),
        summary=_summary,
    ),
)
