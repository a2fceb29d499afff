"""The 12351 worker service hotline (the union's own) as a partner kind: the hub every
referral of the deployment crosses. Its side (`side.py`, `plan.py`) is generic over the
partners: it routes each case by its `origin` or `transfer.to`, and reads a partner's
snapshots through that partner's kind (`UnionView`).

Registered in `bridge/app.py`; its config is the contract's `[hotline12351]` section.
"""

from __future__ import annotations

from typing import Any, Final

from adapters.hotline12351.adapter import Hotline12351
from adapters.hotline12351.config import Hotline12351Config
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
from bridge.partners.hotline12351.side import Apply12351, Intake12351

NAME: Final = "12351"


def build_side(ctx: SideContext) -> Side:
    hotline = Hotline12351(ctx.session, ctx.config)
    hotline.system = ctx.name  # the partner's name in this deployment
    partners = [name for name in ctx.deployment.names if name != ctx.name]
    return Side(
        ctx.name,
        hotline,
        Intake12351(tables=ctx.tables, partners=partners),
        Apply12351(hotline=hotline, tables=ctx.tables, deployment=ctx.deployment),
        hotline.budget,
    )


async def start_simulator(opts: SimOptions) -> RunningSim:
    from adapters.hotline12351.sim.server import Simulator12351

    api_key = opts.values["api_key"]
    sim = Simulator12351(api_keys={api_key: "hotline-bridge"}, seed=opts.seed)
    root, stop = await serve_sim(sim.make_app(), opts.host, opts.port)
    config = {"base_url": f"{root}/integration/v1", "api_key": api_key}
    return RunningSim(opts.name, root, config["base_url"], config, sim, stop)


def _summary(sim: Any) -> str:
    cases = sim.cases.values()
    from_partners = sum(1 for c in cases if c.get("origin"))
    transferred = sum(1 for c in cases if c.get("status") == "transferred")
    return f"{from_partners} cases from partners, {transferred} transferred"


KIND = PartnerKind(
    kind=NAME,
    config_model=Hotline12351Config,
    build_side=build_side,
    secrets=("api_key",),
    default_name=NAME,
    legacy_section="hotline12351",
    is_union=True,
    simulator=Simulator(
        default_port=8351,
        start=start_simulator,
        options=(SimOption("api_key", "demo-key", "12351 api key", alias="--api-key"),),
        drive=lambda per_s: ("/driver", {"cases_per_s": per_s}),
        summary=_summary,
    ),
)
