"""`hotline-bridge`: run the daemon, check a config, start the simulators, run the demo;
the admin commands (`status`, `referrals`, `dead-letters`, `reconcile`) over a node's
admin API are in `bridge.cli_admin`."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import click

from bridge import cli_admin, runtime
from bridge.cli_target import settings_or_exit as _settings_or_exit
from bridge.config import masked
from bridge.logging import configure_logging
from bridge.partners import simulated


@click.group()
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Bridge referrals between the union's hotline and its partner hotlines over RabbitMQ."""
    ctx.obj = {"log_level": log_level}


@main.command()
@click.option(
    "--config",
    "config_path",
    default="bridge.toml",
    show_default=True,
    type=click.Path(dir_okay=False),
)
@click.pass_context
def run(ctx: click.Context, config_path: str) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    configure_logging(ctx.obj["log_level"])
    settings = _settings_or_exit(config_path)
    runtime.run(_run(settings))


async def _run(settings) -> None:  # type: ignore[no-untyped-def]
    from bridge.app import start_node

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        node = await start_node(settings, stack)
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(node.supervisor.failed.wait())
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        failed.cancel()
        import structlog

        structlog.get_logger("bridge").info("node.stopping", failure=node.supervisor.failure)
    if node.supervisor.failure is not None:
        # a task kept crashing: exit non-zero so that the service manager restarts us
        raise SystemExit(1)


@main.command("check-config")
@click.option("--config", "config_path", default="bridge.toml", show_default=True)
@click.option("--connect", is_flag=True, help="then try the broker, the store and each hotline")
def check_config(config_path: str, connect: bool) -> None:
    """Validate a configuration file (with env overrides) and print it, secrets hidden;
    with --connect, try each connection instead and say which fails (exit 1 if any)."""
    settings = _settings_or_exit(config_path)
    if connect:
        from bridge.ops import check_connections

        click.echo(f"configuration: ok ({config_path})")
        failed = False
        for what, reason in runtime.run(check_connections(settings)):
            click.echo(f"{what}: {'ok' if reason is None else 'FAILED: ' + reason}")
            failed = failed or reason is not None
        if failed:
            sys.exit(1)
        return
    dumped = masked(settings)
    dumped["admin"]["tokens"] = sorted(set(dumped["admin"]["tokens"].values()))
    for section in ("amqp", "store"):
        dumped[section]["url"] = re.sub(
            r"://([^:/@]*):[^@]*@", r"://\1:***@", dumped[section]["url"]
        )
    click.echo(json.dumps(dumped, ensure_ascii=False, indent=2))


def _simulator_options(command: Callable[..., None]) -> Callable[..., None]:
    """`--port-<name>` and each kind's own `--<key>-<name>` flags (with the spelling they
    had before there were partners, where a kind names one), for every simulated kind."""
    for name, kind in reversed(list(simulated().items())):
        assert kind.simulator is not None
        for option in reversed(kind.simulator.options):
            flag = f"--{option.key.replace('_', '-')}-{name}"
            names = [flag, *([option.alias] if option.alias else [])]
            dest = f"opt__{name}__{option.key}"
            command = click.option(
                *names, dest, default=option.default, show_default=True, help=option.help
            )(command)
        port = kind.simulator.default_port
        command = click.option(
            f"--port-{name}", f"port__{name}", default=port, show_default=True, type=int
        )(command)
    return command


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@_simulator_options
@click.option(
    "--rate-limits/--no-rate-limits",
    default=True,
    show_default=True,
    help="each simulator's published rate limit",
)
@click.option(
    "--drive",
    type=float,
    default=0.0,
    show_default=True,
    help="new cases per second on each side (0: none; the control API can start it)",
)
@click.pass_context
def simulate(
    ctx: click.Context, host: str, rate_limits: bool, drive: float, **flags: object
) -> None:
    """Serve every partner's simulator until interrupted."""
    from bridge.demo import Simulators

    configure_logging(ctx.obj["log_level"])
    ports: dict[str, int] = {}
    options: dict[str, dict[str, object]] = {}
    for dest, value in flags.items():
        what, name, *key = dest.split("__")
        if what == "port":
            ports[name] = int(value)  # type: ignore[call-overload]
        else:
            options.setdefault(name, {})[key[0]] = value

    async def serve() -> None:
        async with Simulators(
            host=host, ports=ports, options=options, rate_limits=rate_limits
        ) as sims:
            if drive:
                await sims.drive(drive)
            for name in sims.running:
                click.echo(f"{name} simulator: {sims.url(name)}")
            await _wait_for_signal()

    runtime.run(serve())


@main.command()
@click.option(
    "--config",
    "config_path",
    default=None,
    help="bridge config (default: the example config with a local SQLite file)",
)
@click.option("--rate", default=0.5, show_default=True, help="new cases per second per side")
@click.option("--seconds", default=0.0, help="stop after this long (0: until Ctrl-C)")
@click.pass_context
def demo(ctx: click.Context, config_path: str | None, rate: float, seconds: float) -> None:
    """Both simulators with a steady flow of cases, the bridge on SQLite and the local
    RabbitMQ, and a live summary until stopped."""
    from bridge.demo import run_demo

    log_file = Path("var/demo.log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as stream:
        configure_logging(ctx.obj["log_level"], stream=stream)
        runtime.run(run_demo(config_path, rate=rate, seconds=seconds, log_file=log_file))


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


cli_admin.register(main)

if __name__ == "__main__":
    main()
