"""The configuration contract (ARCHITECTURE.md): a TOML file with every key overridable
by an environment variable `BRIDGE_<SECTION>__<KEY>` (pydantic-settings).

Precedence: explicit arguments > environment > TOML file > defaults. A node needs the
section of a partner only if it runs that side (`[bridge] sides`); `check()` says so.
Partners are data (`bridge.partners`): `[partners.<name>]` sections with a `kind`; the
contract's `[hotline12345]` and `[hotline12351]` are the sections of the two first
partners under the spelling they had before there were partners.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from adapters.hotline12345.config import Hotline12345Config
from adapters.hotline12351.config import Hotline12351Config
from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.partners import Deployment


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a default


class AmqpConfig(_Section):
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = Field(default="hotline-bridge", description="prefix of every name")
    shards: int = Field(default=4, ge=1, le=64)
    prefetch: int = Field(default=32, ge=1)
    concurrency: int = Field(
        default=8,
        ge=1,
        description="snapshots of different referrals applied at once per work queue "
        "(one referral's always one at a time, in order); the channel's prefetch bounds "
        "them too. 1: each shard strictly one message at a time",
    )
    publish_timeout_s: float = Field(default=10.0, gt=0)
    retry_delays_s: tuple[int, ...] = (2, 10, 60, 300, 900, 1800)
    delivery_limit: int = Field(default=20, ge=1)


class StoreConfig(_Section):
    url: str = "sqlite:////var/lib/hotline-bridge/bridge.db"
    outbox_max_attempts: int = Field(
        default=10,
        ge=1,
        description="failed publishes (nack, timeout) after which an outbox message is "
        "parked as a dead letter; a message the broker returns as unroutable is parked at "
        "once, and a lost connection spends no attempt",
    )
    outbox_retry_initial_s: float = Field(
        default=1.0, gt=0, description="back-off after an outbox message's first failed publish"
    )
    outbox_retry_max_s: float = Field(
        default=300.0,
        gt=0,
        description="longest back-off between two publishes of an outbox message (it "
        "doubles from outbox_retry_initial_s up to this)",
    )
    outbox_retention_s: float = Field(
        default=604_800, gt=0, description="published outbox messages are deleted after this"
    )
    dead_letter_retention_s: float = Field(
        default=2_592_000,
        gt=0,
        description="replayed or discarded dead letters are deleted this long after their "
        "last change (parked ones are kept until an admin acts)",
    )
    reconciliation_retention_s: float = Field(
        default=2_592_000, gt=0, description="finished reconciliation runs are deleted after this"
    )
    lease_retention_s: float = Field(
        default=86_400, gt=0, description="leases expired for this long are deleted"
    )
    retention_interval_s: float = Field(
        default=600, gt=0, description="how often the retention task deletes what has expired"
    )
    retention_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="rows deleted per transaction by the retention task (it yields between "
        "batches, so traffic is never blocked for long)",
    )


class AdminConfig(_Section):
    enabled: bool = Field(default=True, description="serve the admin HTTP API on `listen`")
    listen: str = Field(
        default="127.0.0.1:8080", description="host:port of the admin API; port 0: any free one"
    )
    tokens: dict[str, Literal["read", "operate"]] = Field(
        default_factory=dict,
        description="bearer token → role (`read`: look; `operate`: also replay, discard, "
        "reconcile, unmask); prefer token_files for real secrets",
    )
    token_files: dict[str, Literal["read", "operate"]] = Field(
        default_factory=dict,
        description="path of a file holding one token → its role; read once at start",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("listen is host:port, the port 0-65535")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


class BridgeSection(_Section):
    sides: list[str] = Field(default=["12345", "12351"], description="the partners this node runs")
    partners: list[str] | None = Field(
        default=None,
        description="every partner of the deployment (default: sides): a node routes to a "
        "partner another node runs; a transfer to a name outside them is parked",
    )
    poll_interval_s: float = Field(default=2.0, gt=0)
    poll_busy_interval_s: float = Field(
        default=0.5,
        gt=0,
        description="the next read after one that brought something new (at most "
        "poll_interval_s); 0.5 s keeps a 12345 node's two feeds at 4 requests/s of its 20",
    )
    poll_max_backoff_s: float = Field(
        default=10.0,
        gt=0,
        description="the longest wait between reads of a failing feed: short, so that a "
        "feed goes on within seconds of its hotline's recovery (two 12345 feeds at 10 s "
        "are 0.2 requests/s)",
    )
    reconcile_interval_s: float = Field(default=600, gt=0)
    reconcile_window_s: float = Field(
        default=86_400,
        gt=0,
        description="how far back each reconciliation run re-lists its own system's list "
        "calls (well past any plausible clock skew of the other side)",
    )
    reconcile_rate_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="the largest share of each hotline's request budget a reconciliation "
        "run may take (early warnings never wait on it); a hotline without a client-side "
        "limit (12351 by default) is paced only by its answers (429)",
    )
    node_id: str | None = Field(default=None, description="defaults to host:pid")
    handler_name: str = "12351职工服务热线"
    attempt_timeout_s: float = Field(default=30.0, gt=0)
    crash_exit_after_s: float = Field(
        default=300.0,
        gt=0,
        description="a background task that keeps crashing for longer than this makes the "
        "process exit non-zero, so that the service manager starts a clean one",
    )

    @field_validator("sides")
    @classmethod
    def _sides(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one side")
        return list(dict.fromkeys(value))


class SlaConfig(_Section):
    enabled: bool = Field(default=True, description="run the SLA watch (deadlines near or missed)")
    interval_s: float = Field(
        default=60.0, gt=0, description="time between two scans of the open referrals"
    )
    warn_before_s: float = Field(
        default=1800.0,
        ge=0,
        description="a deadline this close is `at_risk` (logged once as `sla.at_risk`)",
    )
    holidays: list[date] = Field(
        default_factory=list,
        description="days off of the official calendar (法定节假日) that fall Monday to "
        "Friday: not working days for the 12351 `normal` answer time (5 working days)",
    )
    extra_workdays: list[date] = Field(
        default_factory=list,
        description="make-up working days (调休上班) that fall on a Saturday or Sunday",
    )

    @model_validator(mode="after")
    def _calendar(self) -> SlaConfig:
        both = sorted(set(self.holidays) & set(self.extra_workdays))
        if both:
            days = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"a day cannot be both a holiday and a working day: {days}")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_nested_delimiter="__", extra="forbid"
    )

    amqp: AmqpConfig = AmqpConfig()
    store: StoreConfig = StoreConfig()
    hotline12345: Hotline12345Config | None = None
    hotline12351: Hotline12351Config | None = None
    partners: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="`[partners.<name>]`: any further partner, by name, with its `kind`",
    )
    admin: AdminConfig = AdminConfig()
    bridge: BridgeSection = BridgeSection()
    sla: SlaConfig = SlaConfig()
    mapping: dict[str, Any] = Field(default_factory=dict, description="table overrides")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def check(self) -> None:
        """Raise `ConfigError` if a configured side lacks its section, a partner's kind is
        unknown or its section does not validate."""
        self.deployment()

    def deployment(self, *, require_sides: bool = True) -> Deployment:
        """The partners of the deployment these settings describe (`bridge.partners`)."""
        from bridge.partners import resolve

        return resolve(self, require_sides=require_sides)


def load_settings(
    path: str | Path | None = None, *, check: bool = True, **overrides: Any
) -> Settings:
    """Read `path` (TOML; missing file = defaults only) with env overrides on top.
    `check=False` skips `Settings.check()`, for a reader that needs only some sections
    (the CLI's admin commands read `[admin]` and `[store]`, never a hotline's)."""
    toml_file = Path(path) if path else None
    if toml_file is not None and not toml_file.exists():
        raise ConfigError(f"config file {toml_file} does not exist")

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=toml_file)

    try:
        settings = _FileSettings(**overrides)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration in {toml_file or 'environment'}: {exc}") from exc
    result = Settings.model_construct(**{k: getattr(settings, k) for k in Settings.model_fields})
    if check:
        result.check()
    return result


def settings_to_toml(settings: Settings) -> str:
    """`settings` as a TOML config file that `load_settings` reads back to the same
    values, secrets included (for handing a config to a daemon process; `[mapping]`
    overrides are left out)."""

    def table(name: str, values: dict[str, Any]) -> str:
        lines = [f"[{name}]"]
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, dict):
                inner = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        return "\n".join(lines)

    data = settings.model_dump(mode="json")
    # model_dump masks SecretStr values; a config file needs them as they are
    for section, key, secret in _secrets(settings):
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        _section(data, section)[key] = secret
    partners = data.pop("partners", {})
    parts = [
        table(name, values)
        for name, values in data.items()
        if isinstance(values, dict) and values and name != "mapping"
    ]
    parts += [table(f"partners.{name}", values) for name, values in partners.items()]
    return "\n\n".join(parts) + "\n"


def _secrets(settings: Settings) -> list[tuple[str, str, Any]]:
    """(section, key, value) of every secret in the partners' sections (their kinds say
    which keys are secrets)."""
    from bridge.partners import kind, kinds

    sections: dict[str, tuple[str, ...]] = {}
    for known in kinds().values():
        if known.legacy_section and getattr(settings, known.legacy_section, None) is not None:
            sections[known.legacy_section] = known.secrets
    for name, raw in settings.partners.items():
        if raw.get("kind"):
            sections[f"partners.{name}"] = kind(str(raw["kind"])).secrets
    found = []
    for section, keys in sections.items():
        for key in keys:
            value = _section_value(settings, section, key)
            if value is not None:
                found.append((section, key, value))
    return found


def _section_value(settings: Settings, section: str, key: str) -> Any:
    if section.startswith("partners."):
        return settings.partners.get(section.split(".", 1)[1], {}).get(key)
    return getattr(getattr(settings, section, None), key, None)


def _section(data: dict[str, Any], section: str) -> dict[str, Any]:
    if section.startswith("partners."):
        return data.setdefault("partners", {}).setdefault(section.split(".", 1)[1], {})
    return data.setdefault(section, {})


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as JSON with every partner's secrets masked (`check-config`)."""
    data = settings.model_dump(mode="json")
    for section, key, _ in _secrets(settings):
        _section(data, section)[key] = "***"
    return data
