"""How the CLI's admin commands (`bridge.cli_admin`) reach a node's admin API.

Where: `--url`, else `http://<[admin] listen>` of `--config`. Who: the bearer token in
`$HOTLINE_BRIDGE_TOKEN`, or the file `--token-file` (which wins). What comes out: rich
tables, or the API's JSON as it is with `--json`. Exit status: 0 done, 1 the API
answered an error (its problem's title and detail on stderr), 2 a usage or configuration
error, 3 nothing answered. `status --store` and `dead-letters list --store` read the
store instead, read-only, for when the daemon is down.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from bridge import cli_render as render
from bridge import runtime
from bridge.admin_client import AdminClient, ApiError, Unreachable
from bridge.config import Settings, load_settings
from bridge.errors import ConfigError

T = TypeVar("T")
TOKEN_ENV = "HOTLINE_BRIDGE_TOKEN"
EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
STATES = (
    "opened", "delivered", "signed", "in_progress", "extended", "replied", "returned",
    "callback_recorded", "reopened", "withdrawn", "closed",
)  # fmt: skip
STAGES = ("intake", "apply", "transport", "publish")
LETTER_STATUSES = ("parked", "replayed", "discarded")


def settings_or_exit(path: str, *, check: bool = True) -> Settings:
    """The settings of `path` (the default `bridge.toml` may be absent: defaults and the
    environment then); a configuration error exits 2."""
    try:
        return load_settings(
            path if Path(path).exists() or path != "bridge.toml" else None, check=check
        )
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


class IsoTime(click.ParamType):
    """An ISO 8601 time; one without an offset is taken as local time."""

    name = "ISO-8601"

    def convert(self, value: Any, param: Any, ctx: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2026-11-29T08:00:00+08:00)")
        return at if at.tzinfo else at.astimezone()


@dataclass(frozen=True)
class Target:
    """Which node to ask, with which token, and how to print its answers."""

    config_path: str
    url: str | None
    token_file: str | None
    as_json: bool

    def settings(self) -> Settings:
        return settings_or_exit(self.config_path, check=False)

    def admin_url(self) -> str:
        if self.url:
            if not self.url.startswith(("http://", "https://")):
                _usage(f"--url {self.url!r} is not http://host:port")
            return self.url
        host, port = self.settings().admin.host_port
        if port == 0:
            _usage("[admin] listen has port 0 (any free one): pass the node's --url")
        if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine answers
            host = "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def token(self) -> str:
        if self.token_file:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
            if not token:
                _usage(f"the token file {self.token_file} is empty")
            return token
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            _usage(f"no token: set {TOKEN_ENV} or pass --token-file PATH")
        return token

    def run(self, call: Callable[[AdminClient], Awaitable[T]], *, store_hint: bool = False) -> T:
        """Run `call` with a client of this target; an API error exits 1 and no answer
        exits 3, each explained on stderr."""
        url, token = self.admin_url(), self.token()

        async def main() -> T:
            async with AdminClient(url, token) as api:
                return await call(api)

        try:
            return runtime.run(main())
        except ApiError as exc:
            _api_failed(exc)
        except Unreachable as exc:
            hint = "try --store" if store_hint else "status and dead-letters list have --store"
            click.echo(f"{exc}\nis the daemon running? {hint}", err=True)
            sys.exit(EXIT_UNREACHABLE)

    def print(self, doc: Any, show: Callable[[Any, Any], None]) -> None:
        if self.as_json:
            click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            show(render.console(), doc)


def _usage(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _api_failed(exc: ApiError) -> NoReturn:
    click.echo(_problem_text(exc), err=True)
    sys.exit(EXIT_API)


def _problem_text(exc: ApiError) -> str:
    lines = [f"{exc.title} (HTTP {exc.status})" + (f": {exc.detail}" if exc.detail else "")]
    lines += [f"  {e.get('loc')}: {e.get('msg')}" for e in exc.errors if isinstance(e, dict)]
    return "\n".join(lines)


def admin_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--config --url --token-file --json`, handed to the command as `target`."""

    @click.option("--config", "config_path", default="bridge.toml", show_default=True)
    @click.option("--url", help="the node's admin API, http://host:port [default: from --config]")
    @click.option(
        "--token-file",
        type=click.Path(exists=True, dir_okay=False),
        help=f"a file holding the bearer token [default: ${TOKEN_ENV}]",
    )
    @click.option("--json", "as_json", is_flag=True, help="print the API's JSON as it is")
    @functools.wraps(command)
    def wrapper(
        config_path: str, url: str | None, token_file: str | None, as_json: bool, **kwargs: Any
    ) -> Any:
        return command(Target(config_path, url, token_file, as_json), **kwargs)

    return wrapper


def _progress(show: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=render.console(stderr=True),
        disable=not show,
    )


async def follow_job(api: AdminClient, job: dict[str, Any], *, show: bool) -> dict[str, Any]:
    """Follow `GET /api/v1/jobs/{id}` until the job is done or failed (a progress bar on
    stderr when `show`); returns its last state. `done` and `failed` are read as the
    items that succeeded and those that failed, so both count as progress."""
    with _progress(show) as progress:
        bar = progress.add_task(f"job {job['id']}", total=job.get("total"))
        async for state in api.follow(f"/api/v1/jobs/{job['id']}"):
            finished = state["done"] + state.get("failed", 0)
            total = state.get("total")
            progress.update(
                bar,
                total=total,
                completed=min(finished, total) if total is not None else finished,
                description=f"job {state['id']} {state['status']}",
            )
            job = state
    return job


async def follow_reconciliation(
    api: AdminClient, run: dict[str, Any], *, show: bool
) -> dict[str, Any]:
    """Follow `GET /api/v1/reconciliations/{id}` until it is no longer running (a
    spinner with the counts so far on stderr when `show`); returns the finished run."""
    path = f"/api/v1/reconciliations/{run['id']}"
    with _progress(show) as progress:
        spinner = progress.add_task(f"reconciliation {run['id']}", total=None)
        async for state in api.follow(path, until=lambda r: r["status"] != "running"):
            counts = state.get("counts") or {}
            shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            progress.update(
                spinner,
                completed=counts.get("checked", 0),
                description=f"reconciliation {state['id']} {state['status']} {shown}".rstrip(),
            )
            run = state
    return run


def path_id(value: str) -> str:
    """A referral id or `<system>:<number>` as one path segment (a `/` encoded)."""
    return quote(value, safe=":")
