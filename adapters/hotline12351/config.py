"""Settings of the 12351 adapter: where the interface is and the key the union gave us."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Hotline12351Config(BaseModel):
    """The `[hotline12351]` section. `base_url` includes the version path, e.g.
    `https://12351.example.org/integration/v1`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(min_length=1)
    api_key: SecretStr
    timeout_s: float = Field(default=10.0, gt=0)
    page_limit: int = Field(default=500, ge=1, le=500, description="feed page size (max 500)")
    rate_limit_rps: float | None = Field(
        default=None,
        ge=0,
        description="requests/s this node stays under; 12351 publishes no limit, so none "
        "by default (a 429 still slows every caller down for a while); 0 or None: no limit",
    )
