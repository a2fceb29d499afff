"""An Open311 GeoReport v2 partner (12385, the disabled persons' federation's service
line) as a partner kind: its adapter (`adapters.open311`), its side's policies
(`side.py`), the pure mapping (`mapping.py`) and the 12385 ↔ 12351 tables (`tables.py`),
its simulator, and how the union's side reads its snapshots.

Registered in `bridge/app.py`; its config is a `[partners.<name>]` section with
`kind = "open311"` (`adapters.open311.Open311Config`). A name without a section is of
this kind when it is `12385` (`default_name`), which is also the name `simulate` and the
demo start its simulator under.
"""

from __future__ import annotations

from typing import Any, Final

from adapters.open311.adapter import Hotline385
from adapters.open311.config import Open311Config
from bridge.engine.intake import Intake, record_intake
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
from bridge.partners.open311.side import KIND as KIND_NAME
from bridge.partners.open311.side import UNION, Apply385, Intake385
from bridge.partners.open311.tables import Open311Tables
from bridge.store import Tx
from schemas.canonical import Referral

NAME: Final = "12385"


class UnionView:
    """How the union's side reads a 12385 snapshot (the kind's tables, `tables.py`)."""

    def service_type(self, ref: Referral, tables: MappingTables) -> str:
        own = tables.of(KIND_NAME, Open311Tables)
        return own.service_type_for(ref.classification.get(ref.source, ""))

    def partner_status(self, ref: Referral, tables: MappingTables) -> tuple[str, bool] | None:
        own = tables.of(KIND_NAME, Open311Tables)
        status = own.created_status_to_partner_status.get(ref.native_status)
        return None if status is None else (status, False)


def build_side(ctx: SideContext) -> Side:
    config: Open311Config = ctx.config
    hotline = Hotline385(ctx.session, config, system=ctx.name)
    union = ctx.deployment.union or UNION
    topology = ctx.topology
    if topology is None:
        raise ValueError(f"the {ctx.name} side needs the node's topology (SideContext.topology)")

    async def publish(tx: Tx, intake: Intake) -> None:
        # 12385 writes no update when a request is created: no feed shows it
        await record_intake(tx, topology, intake)

    return Side(
        ctx.name,
        hotline,
        Intake385(system=ctx.name, tables=ctx.tables, union=union),
        Apply385(system=ctx.name, hotline=hotline, tables=ctx.tables, publish=publish, union=union),
        hotline.budget,
        poll_interval_s=config.poll_interval_s,
    )


async def start_simulator(opts: SimOptions) -> RunningSim:
    """The 12385 simulator, `api_key` belonging to the client named `12351`, at most
    `rate_limit` calls a minute per key (when the simulators limit rates at all)."""
    from adapters.open311.sim.server import BASE_PATH, Simulator385

    values = opts.values
    api_key, per_min = values["api_key"], int(values["rate_limit"])
    sim = Simulator385(
        api_keys={api_key: UNION},
        rate_limit_per_min=per_min if opts.rate_limits else None,
        seed=opts.seed,
    )
    root, stop = await serve_sim(sim.make_app(), opts.host, opts.port)
    config: dict[str, Any] = {
        "base_url": f"{root}{BASE_PATH}",
        "api_key": api_key,
        "rate_limit_per_min": per_min if opts.rate_limits else 0,
    }
    return RunningSim(opts.name, root, config["base_url"], config, sim, stop)


def _summary(sim: Any) -> str:
    requests = sim.requests.values()
    referred = sum(1 for r in requests if r.get("agency_responsible") == UNION)
    created = sum(1 for i in sim.requests if sim.book.meta[i].created_by is not None)
    return f"{referred} referred to the union, {created} created by partners"


KIND = PartnerKind(
    kind=KIND_NAME,
    config_model=Open311Config,
    build_side=build_side,
    secrets=("api_key",),
    default_name=NAME,
    union=UnionView(),
    tables=Open311Tables,
    simulator=Simulator(
        default_port=8385,
        start=start_simulator,
        options=(
            SimOption("api_key", "demo-key", "12385 api key (its client name: 12351)"),
            SimOption("rate_limit", 10, "12385 calls per minute per api key"),
        ),
        # 10 calls a minute carry about two requests a minute end to end: no faster
        drive=lambda per_s: ("/driver", {"requests_per_min": min(per_s * 60, 2.0)}),
        summary=_summary,
    ),
)
