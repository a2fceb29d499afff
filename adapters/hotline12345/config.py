"""Configuration of the 12345 adapter: the `[hotline12345]` section of the bridge config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Hotline12345Config(BaseModel):
    """Where 12345 is, who the bridge is there, and how it pages and signs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(description="e.g. https://12345.example.gov/api/v2")
    client_id: str
    client_secret: SecretStr
    unit_code: str = Field(min_length=1, description="the union's handling unit at 12345")
    timeout_s: float = Field(default=10.0, gt=0)
    page_size: int = Field(
        default=200, ge=20, le=200, description="12345 refuses > 200; the reader needs >= 20"
    )
    handler_name: str = Field(
        default="12351职工服务热线", min_length=1, description="`handler` sent with sign and reply"
    )
    token_refresh_margin_s: float = Field(
        default=300.0, ge=0, description="fetch a new token this long before the old one expires"
    )
    source_system: str = Field(default="12351", description="`sourceSystem` of orders we create")
    feed_max_pages: int = Field(
        default=50, ge=2, description="page requests one feed read may spend on a crowded second"
    )
    rate_limit_rps: float | None = Field(
        default=20.0,
        ge=0,
        description="12345's published per-client limit (requests/s) that this node stays "
        "under, token requests included; 0 or None: no limit (benchmarks)",
    )
