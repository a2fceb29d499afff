"""The registry of partner kinds, and the partners of a deployment.

A *kind* is a hotline interface the bridge can speak (12345's, 12351's, Open311's). It
brings everything that is particular to it (`PartnerKind`): its config model, how to
build its side of a node (adapter, intake and apply policies, request budget), the
secrets of its config section, how the union's side reads its snapshots (`UnionView`),
its SLA deadlines, and its simulator for `hotline-bridge simulate` and the demo. A
*partner* is one hotline of the deployment: a name (`12345`, `12385`) and a kind.

The engine, store, transport, reconciler, CLI and demo take every partner from here and
name none: a new partner is an `adapters/<kind>/` package, its kind module, and one
`register()` in `bridge/app.py` (docs/partners.md, step by step).

Partner names come from the configuration: `[bridge] partners` (default: `sides`).
A name with a `[partners.<name>]` section is of the section's `kind`; a name without
one is of the kind whose `default_name` it is (the contract's `[hotline12345]` and
`[hotline12351]` sections are those kinds' sections under their old spelling).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from bridge.errors import ConfigError

if TYPE_CHECKING:
    import aiohttp

    from adapters.base import Hotline
    from adapters.ratelimit import RequestBudget
    from bridge.config import Settings
    from bridge.engine.applier import ApplyPolicy
    from bridge.engine.deadlines import Deadline
    from bridge.engine.intake import IntakePolicy
    from bridge.mapping import MappingTables
    from bridge.transport import Topology
    from schemas.canonical import Referral


@dataclass
class Side:
    """One hotline this node runs: its adapter, intake and apply policies, the request
    budget its calls spend (which counts their outcomes, for the metrics), and how often
    its feeds are polled (None: `[bridge] poll_interval_s`; a partner with a tight rate
    limit polls less often)."""

    system: str
    hotline: Hotline
    intake: IntakePolicy
    apply: ApplyPolicy
    budget: RequestBudget | None = None
    poll_interval_s: float | None = None


@dataclass(frozen=True)
class SideContext:
    """What a kind gets to build the side of partner `name` on a node."""

    name: str
    config: Any
    """The partner's config section, validated by the kind's `config_model`."""
    settings: Settings
    session: aiohttp.ClientSession
    tables: MappingTables
    deployment: Deployment
    topology: Topology | None = None
    """The node's broker topology: where a side queues a snapshot of its own system that
    no feed will show (a partner that writes no change when a record is created)."""


class UnionView(Protocol):
    """How the union's side (12351) reads a snapshot of this partner's record: the two
    things it cannot take from the canonical fields alone. Kept with the partner's kind,
    so that the union's module names no partner (a pair's tables live with the partner)."""

    def service_type(self, ref: Referral, tables: MappingTables) -> str:
        """The union's service type for a request that began at this partner."""
        ...

    def partner_status(self, ref: Referral, tables: MappingTables) -> tuple[str, bool] | None:
        """Where the partner's record made from a union case stands, as the union's
        partner status, and whether the visit's satisfaction goes with it; None: not yet
        anything to tell (the record is only delivered)."""
        ...


DeadlinesFn = Callable[..., "list[Deadline]"]
"""`(ref, actions, stored, *, calendar, systems) -> [Deadline]`: the SLA deadlines of a
referral that began at a partner of this kind (see `bridge.engine.deadlines`)."""


@dataclass(frozen=True)
class SimOption:
    """A `simulate` flag of one kind: `--<flag>-<partner name>` (and `alias`, the flag's
    spelling from before there were partners, for the kinds that had one)."""

    key: str
    default: Any
    help: str
    alias: str | None = None


@dataclass(frozen=True)
class SimOptions:
    """How to start one simulator: where, its kind's own options, and the common ones."""

    name: str
    host: str
    port: int
    values: Mapping[str, Any] = field(default_factory=dict)
    rate_limits: bool = True
    seed: int = 0


@dataclass
class RunningSim:
    """A simulator serving at `root`; `config` is the partner config section that points
    a node at it (tests may change it before a node reads it); `sim` the simulator
    object; `stop()` shuts it down."""

    name: str
    root: str
    url: str
    config: dict[str, Any]
    sim: Any
    stop: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Simulator:
    """A kind's simulator, for `hotline-bridge simulate`, the demo and the tests. `start`
    imports the simulator only when called: production code never loads one."""

    default_port: int
    start: Callable[[SimOptions], Awaitable[RunningSim]]
    options: tuple[SimOption, ...] = ()
    drive: Callable[[float], tuple[str, dict[str, Any]]] | None = None
    """New records per second → the control call (path under `/_sim`, body) that starts
    the simulator's workflow driver."""
    summary: Callable[[Any], str] | None = None
    """A line of what the simulator holds, for the demo."""


async def serve_sim(app: Any, host: str, port: int) -> tuple[str, Callable[[], Awaitable[None]]]:
    """Serve a simulator's aiohttp `app`; returns its root URL and how to stop it."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return f"http://{host}:{runner.addresses[0][1]}", runner.cleanup


@dataclass(frozen=True)
class PartnerKind:
    kind: str
    config_model: type[BaseModel]
    build_side: Callable[[SideContext], Side]
    secrets: tuple[str, ...] = ()
    """Keys of the config section that are secrets (masked wherever config is shown)."""
    default_name: str | None = None
    """The partner name this kind takes when a name has no `[partners.<name>]` section."""
    legacy_section: str | None = None
    """The contract's top-level section for this kind (`hotline12345`), if any."""
    union: UnionView | None = None
    deadlines: DeadlinesFn | None = None
    tables: type[BaseModel] | None = None
    """Its own mapping tables (a pydantic model whose every field has a default): an ops
    team overrides them in `[mapping.<kind>]`; they are versioned with the node's tables,
    and its policies read them with `MappingTables.of(kind, model)`."""
    sla_kinds: tuple[tuple[str, str], ...] = ()
    """(system, deadline kind) pairs its deadlines can take, for the metrics."""
    simulator: Simulator | None = None
    is_union: bool = False
    """The union's own hotline: the hub every referral of the deployment crosses."""


_KINDS: dict[str, PartnerKind] = {}


def register(kind: PartnerKind) -> PartnerKind:
    """Add a kind to the registry (idempotent for the same object)."""
    known = _KINDS.get(kind.kind)
    if known is not None and known is not kind:
        raise ValueError(f"partner kind {kind.kind!r} is registered already")
    _KINDS[kind.kind] = kind
    return kind


def unregister(kind: str) -> None:
    """Remove a kind (tests that register a throwaway one)."""
    _KINDS.pop(kind, None)


def kinds() -> Mapping[str, PartnerKind]:
    _builtin()
    return dict(_KINDS)


def _builtin() -> None:
    """Make sure the kinds `bridge/app.py` registers are there (a tool or test that reads
    the registry before importing the composition root)."""
    import bridge.app  # noqa: F401  (registers the built-in kinds on import)


def default_deadline_rules() -> dict[str, DeadlinesFn]:
    """Every registered kind's deadlines, by the kind's default partner name."""
    return {k.default_name: k.deadlines for k in kinds().values() if k.deadlines and k.default_name}


def kind(name: str) -> PartnerKind:
    _builtin()
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown partner kind {name!r} (known: {', '.join(_KINDS)})") from None


@dataclass(frozen=True)
class Partner:
    """One partner of the deployment; `config` is None on a node that does not run it
    (and so holds none of its credentials)."""

    name: str
    kind: PartnerKind
    config: Any = None


@dataclass(frozen=True)
class Deployment:
    """Every partner of the deployment, and which of them this node runs."""

    partners: Mapping[str, Partner]
    sides: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.partners)

    @property
    def union(self) -> str | None:
        """The union's hotline among the partners (the hub), if the deployment has it."""
        return next((p.name for p in self.partners.values() if p.kind.is_union), None)

    def routes(self) -> dict[str, str]:
        """Partner → where its referrals go: the union for every other partner; for the
        union, its one partner, or `*` when it has several (each referral names its own
        target then)."""
        union = self.union
        others = [name for name in self.partners if name != union]
        found = {name: union or "*" for name in others}
        if union is not None:
            found[union] = others[0] if len(others) == 1 else "*"
        return found

    def sla_kinds(self) -> tuple[tuple[str, str], ...]:
        return tuple(pair for p in self.partners.values() for pair in p.kind.sla_kinds)

    def kind_of(self, name: str) -> PartnerKind | None:
        partner = self.partners.get(name)
        return partner.kind if partner is not None else None

    def union_view(self, name: str) -> UnionView | None:
        found = self.kind_of(name)
        return found.union if found is not None else None

    def deadline_rules(self) -> dict[str, DeadlinesFn]:
        """Origin partner → the deadlines of referrals that began there."""
        return {name: p.kind.deadlines for name, p in self.partners.items() if p.kind.deadlines}

    def secrets(self) -> dict[str, tuple[str, ...]]:
        """Config section → its secret keys, for every partner with a section here."""
        return {section: p.kind.secrets for section, p in self._sections().items()}

    def _sections(self) -> dict[str, Partner]:
        return {section_of(p): p for p in self.partners.values()}


def section_of(partner: Partner) -> str:
    """The name of the config section a partner's settings are read from."""
    legacy = partner.kind.legacy_section
    if legacy is not None and partner.name == partner.kind.default_name:
        return legacy
    return f"partners.{partner.name}"


def resolve(settings: Settings, *, require_sides: bool = True) -> Deployment:
    """The deployment `settings` describe. Raises ConfigError naming the section for an
    unknown kind, a config section that does not validate, or (with `require_sides`) a
    side this node runs whose section is missing."""
    _builtin()
    sections = dict(settings.partners)
    names = list(dict.fromkeys([*settings.bridge.sides, *(settings.bridge.partners or [])]))
    partners: dict[str, Partner] = {}
    for name in names:
        raw = sections.get(name)
        found = _kind_for(name, raw)
        if raw is None and found.legacy_section is not None and name == found.default_name:
            raw = getattr(settings, found.legacy_section, None)
        routed_only = name not in settings.bridge.sides and _only_kind(raw)
        config = None if raw is None or routed_only else _validated(found, name, raw)
        if config is None and require_sides and name in settings.bridge.sides:
            raise ConfigError(
                f"[bridge] sides includes {name!r} but the "
                f"[{section_of(Partner(name, found))}] section is missing"
            )
        partners[name] = Partner(name, found, config)
    for name in sections:
        if name not in partners:
            raise ConfigError(
                f"[partners.{name}] is configured but {name!r} is in neither [bridge] sides "
                "nor [bridge] partners"
            )
    _check_union(partners)
    return Deployment(partners, tuple(settings.bridge.sides))


def _kind_for(name: str, raw: Any) -> PartnerKind:
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if isinstance(raw, Mapping) and raw.get("kind"):
        return kind(str(raw["kind"]))
    for known in _KINDS.values():
        if known.default_name == name:
            return known
    raise ConfigError(f"partner {name!r}: no [partners.{name}] section names its kind")


def _only_kind(raw: Any) -> bool:
    """A section that names just the kind of a partner another node runs (this node
    holds none of its credentials)."""
    return isinstance(raw, Mapping) and set(raw) <= {"kind"}


def _validated(found: PartnerKind, name: str, raw: Any) -> Any:
    if isinstance(raw, found.config_model):
        return raw
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw)
    data.pop("kind", None)
    try:
        return found.config_model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        section = section_of(Partner(name, found))
        raise ConfigError(f"[{section}] {where}: {first['msg']}") from None


def _check_union(partners: Mapping[str, Partner]) -> None:
    unions = [p.name for p in partners.values() if p.kind.is_union]
    if len(unions) > 1:
        raise ConfigError(f"more than one union hotline among the partners: {unions}")


def names_of(partners: Iterable[Partner]) -> tuple[str, ...]:
    return tuple(p.name for p in partners)


def simulated(names: Collection[str] | None = None) -> dict[str, PartnerKind]:
    """Kinds with a simulator, by their default partner name (what `simulate` starts)."""
    found = {k.default_name: k for k in kinds().values() if k.simulator and k.default_name}
    return {n: k for n, k in found.items() if names is None or n in names}
