"""The simulators as one unit (for `simulate`, the demo, tests and the benchmark) and
the demo itself: the partners' simulators with a steady flow of cases, the bridge on
SQLite and the local RabbitMQ, and a live summary in the terminal. Which simulators run
is the registry's business (`bridge.partners`): every kind with a simulator, under its
default partner name."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Collection, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Self

import aiohttp

from bridge.partners import Partner as _Partner
from bridge.partners import RunningSim, SimOptions, section_of, simulated

_BY_NAME = re.compile(r"(sim|url_|root_)(\w+)")


class Simulators:
    """The partners' simulators served over HTTP on `host` (port 0 picks a free one).

    `names`: which partners (default: every kind with a simulator); `free_ports`: any
    free port for each (else its kind's default port); `ports` and
    `options` per partner name; `port_<name>=` and a kind's option keys (`client_id=`,
    `api_key=`, …) may also be given as keywords. A partner's simulator object is
    `sims.sim(name)` (or `sims.sim<name>`), its base URL `sims.url(name)`, its root
    `sims.root(name)`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        names: Collection[str] | None = None,
        ports: Mapping[str, int] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        rate_limits: bool = True,
        seed: int = 0,
        free_ports: bool = False,
        **keywords: Any,
    ) -> None:
        self.host = host
        self.kinds = simulated(names)
        self.ports = {
            name: kind.simulator.default_port for name, kind in self.kinds.items() if kind.simulator
        }
        if free_ports:  # tests, benchmarks: any free port for every simulator
            self.ports = dict.fromkeys(self.ports, 0)
        self.ports.update(ports or {})
        self.options: dict[str, dict[str, Any]] = {}
        for name, kind in self.kinds.items():
            assert kind.simulator is not None
            given = dict((options or {}).get(name, {}))
            self.options[name] = {
                o.key: given.get(o.key, keywords.get(o.key, o.default))
                for o in kind.simulator.options
            }
        for key, value in keywords.items():
            if key.startswith("port_") and key[5:] in self.ports:
                self.ports[key[5:]] = value
        self.rate_limits = rate_limits
        self.seed = seed
        self.running: dict[str, RunningSim] = {}

    async def __aenter__(self) -> Self:
        for name, kind in self.kinds.items():
            assert kind.simulator is not None
            opts = SimOptions(
                name, self.host, self.ports[name], self.options[name], self.rate_limits, self.seed
            )
            running = await kind.simulator.start(opts)
            self.running[name] = running
            self.ports[name] = int(running.root.rsplit(":", 1)[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        for running in reversed(list(self.running.values())):
            await running.stop()

    def sim(self, name: str) -> Any:
        return self.running[name].sim

    def url(self, name: str) -> str:
        return self.running[name].url

    def root(self, name: str) -> str:
        return self.running[name].root

    def __getattr__(self, attr: str) -> Any:
        # `sims.sim12345`, `sims.url_12351`, `sims.root_12385`; a kind's option by its key
        if attr.startswith("_") or "running" not in self.__dict__:
            raise AttributeError(attr)
        found = _BY_NAME.fullmatch(attr)
        if found is not None and found.group(2) in self.running:
            how = {"sim": self.sim, "url_": self.url, "root_": self.root}[found.group(1)]
            return how(found.group(2))
        for name, values in self.options.items():
            if attr in values:
                return self.running[name].config.get(attr, values[attr])
        raise AttributeError(attr)

    def config_sections(self) -> dict[str, Any]:
        """The config sections that point a node at these simulators (the contract's
        sections for the first two partners, `[partners.<name>]` for the others);
        without simulated rate limits the node does not limit itself either."""
        sections: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            config = dict(self.running[name].config)
            section = section_of(_Partner(name, kind))
            if section.startswith("partners."):
                sections.setdefault("partners", {})[name] = {"kind": kind.kind, **config}
            else:
                sections[section] = config
        return sections

    async def control(self, system: str, method: str, path: str, body: Any = None) -> Any:
        """Call a simulator's `/_sim` control API over HTTP."""
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.root(system)}/_sim{path}", json=body) as resp,
        ):
            resp.raise_for_status()
            return await resp.json()

    async def drive(self, per_s: float) -> None:
        """Start every workflow driver: new records at `per_s` per partner, moved along."""
        for name, kind in self.kinds.items():
            if kind.simulator is not None and kind.simulator.drive is not None:
                path, body = kind.simulator.drive(per_s)
                await self.control(name, "POST", path, body)

    def summary(self) -> str:
        return " | ".join(
            f"{name}: {kind.simulator.summary(self.sim(name))}"
            for name, kind in self.kinds.items()
            if kind.simulator is not None and kind.simulator.summary is not None
        )


async def run_demo(config_path: str | None, *, rate: float, seconds: float, log_file: Path) -> None:
    """Run the demo until Ctrl-C (or `seconds`)."""
    from bridge.app import start_node
    from bridge.config import load_settings

    Path("var").mkdir(exist_ok=True)
    overrides: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        sims = await stack.enter_async_context(Simulators())
        if config_path is None:
            # The simulators start empty every time: so do the ledger and the queues, or
            # positions and messages of an earlier run would point at records that are gone.
            db = Path("var/demo.db").resolve()
            for leftover in (db, db.with_name("demo.db-wal"), db.with_name("demo.db-shm")):
                leftover.unlink(missing_ok=True)
            overrides = {
                "store": {"url": f"sqlite:///{db}"},
                "amqp": {"namespace": f"hotline-bridge-demo-{os.getpid()}"},
                # the node runs every partner there is a simulator for
                "bridge": {"sides": list(sims.running)},
                **sims.config_sections(),
            }
        settings = load_settings(config_path, **overrides)
        if config_path is None:
            stack.push_async_callback(_delete_topology, settings)
        node = await start_node(settings, stack)
        await sims.drive(rate)
        where = ", ".join(f"{name} at {sims.url(name)}" for name in sims.running)
        print(
            f"hotline-bridge demo: {where}, store {settings.store.url}, "
            f"admin at {node.admin_url}, logs in {log_file}. Ctrl-C to stop."
        )
        started = time.monotonic()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            print(await summary_line(sims, node), flush=True)
            if seconds and time.monotonic() - started >= seconds:
                break
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
            except TimeoutError:
                pass
        print("stopping…", flush=True)


async def _delete_topology(settings: Any) -> None:
    from bridge.app import topology_of
    from bridge.transport import Transport

    transport = await Transport.connect(settings.amqp.url, topology_of(settings))
    try:
        await transport.delete_topology()
    finally:
        await transport.aclose()


async def summary_line(sims: Simulators, node: Any) -> str:
    """One line: what each partner holds and where the bridge stands."""
    stats = await node.store.stats()
    dead = sum(stats.get("dead_letters", {}).get(k, 0) for k in ("parked",))
    return (
        f"[{time.strftime('%H:%M:%S')}] {sims.summary()} | ledger: "
        f"{stats.get('referrals_total', 0)} referrals, {stats.get('early_warning', 0)} "
        f"early-warning, outbox {stats.get('outbox_backlog', 0)}, dead letters {dead} | "
        f"pid {os.getpid()}"
    )
