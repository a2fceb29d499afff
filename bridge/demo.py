"""The simulators as one unit (for `simulate`, the demo, tests and the benchmark) and
the demo itself: both simulators with a steady flow of cases, the bridge on SQLite and
the local RabbitMQ, and a live summary in the terminal."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Self

import aiohttp
from aiohttp import web

from adapters.hotline12345.sim.server import Simulator12345
from adapters.hotline12351.sim.server import Simulator12351


class Simulators:
    """Both hotline simulators served over HTTP on `host` (port 0 picks free ports)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port_12345: int = 8345,
        port_12351: int = 8351,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        api_key: str = "demo-key",
        unit_code: str = "BJZGH",
        rate_limits: bool = True,
        seed: int = 0,
    ) -> None:
        self.host = host
        self.ports = {"12345": port_12345, "12351": port_12351}
        self.sim12345 = Simulator12345(
            client_id=client_id,
            client_secret=client_secret,
            unit_code=unit_code,
            rate_limit_per_s=20 if rate_limits else None,
            seed=seed,
        )
        self.sim12351 = Simulator12351(api_keys={api_key: "hotline-bridge"}, seed=seed)
        self._runners: list[web.AppRunner] = []
        self.client_id, self.client_secret, self.api_key = client_id, client_secret, api_key
        self.unit_code = unit_code
        self.rate_limits = rate_limits

    async def __aenter__(self) -> Self:
        for system, sim in (("12345", self.sim12345), ("12351", self.sim12351)):
            runner = web.AppRunner(sim.make_app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.ports[system])
            await site.start()
            self.ports[system] = runner.addresses[0][1]
            self._runners.append(runner)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()

    @property
    def root_12345(self) -> str:
        return f"http://{self.host}:{self.ports['12345']}"

    @property
    def root_12351(self) -> str:
        return f"http://{self.host}:{self.ports['12351']}"

    @property
    def url_12345(self) -> str:
        return f"{self.root_12345}/api/v2"

    @property
    def url_12351(self) -> str:
        return f"{self.root_12351}/integration/v1"

    def config_sections(self) -> dict[str, Any]:
        """The [hotline12345] and [hotline12351] sections that point at these simulators;
        without simulated rate limits the node does not limit itself either."""
        return {
            "hotline12345": {
                "base_url": self.url_12345,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "unit_code": self.unit_code,
                **({} if self.rate_limits else {"rate_limit_rps": 0}),
            },
            "hotline12351": {"base_url": self.url_12351, "api_key": self.api_key},
        }

    async def control(self, system: str, method: str, path: str, body: Any = None) -> Any:
        """Call a simulator's `/_sim` control API over HTTP."""
        root = self.root_12345 if system == "12345" else self.root_12351
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{root}/_sim{path}", json=body) as resp,
        ):
            resp.raise_for_status()
            return await resp.json()

    async def drive(self, per_s: float) -> None:
        """Start both workflow drivers: new cases at `per_s` per side, moved along."""
        await self.control("12345", "POST", "/driver", {"dispatch_per_s": per_s})
        await self.control("12351", "POST", "/driver", {"cases_per_s": per_s})


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
                **sims.config_sections(),
            }
        settings = load_settings(config_path, **overrides)
        if config_path is None:
            stack.push_async_callback(_delete_topology, settings)
        node = await start_node(settings, stack)
        await sims.drive(rate)
        print(
            f"hotline-bridge demo: 12345 at {sims.url_12345}, 12351 at {sims.url_12351}, "
            f"store {settings.store.url}, admin at {node.admin_url}, logs in {log_file}. "
            "Ctrl-C to stop."
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
    """One line: what each side holds and where the bridge stands."""
    orders = sims.sim12345.orders
    to_union = [o for o in orders.values() if _get(o, "unitCode") == sims.unit_code]
    signed = sum(1 for o in to_union if _get(o, "orderStatus") != "10")
    created = sum(1 for o in orders.values() if _get(o, "sourceSystem") == "12351")
    cases = sims.sim12351.cases
    from_12345 = sum(
        1 for c in cases.values() if (_get(c, "origin") or {}).get("system") == "12345"
    )
    transferred = sum(1 for c in cases.values() if _get(c, "status") == "transferred")
    stats = await node.store.stats()
    dead = sum(stats.get("dead_letters", {}).get(k, 0) for k in ("parked",))
    return (
        f"[{time.strftime('%H:%M:%S')}] 12345→12351: {len(to_union)} dispatched, "
        f"{from_12345} cases created, {signed} signed | 12351→12345: {transferred} transferred, "
        f"{created} orders created | ledger: {stats.get('referrals_total', 0)} referrals, "
        f"{stats.get('early_warning', 0)} early-warning, outbox {stats.get('outbox_backlog', 0)}, "
        f"dead letters {dead} | pid {os.getpid()}"
    )


def _get(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else getattr(record, key, None)
