"""Settings of the Open311 adapter: a `[partners.<name>]` section of kind `open311`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Open311Config(BaseModel):
    """Where the partner's Open311 server is, the key its operators gave us, and how we
    treat it. `base_url` includes the version path, e.g. `https://12385.example.org/open311/v2`.

    `rate_limit_per_min` calls per `rate_period_s` (the published 10 per 60 s by default)
    is one budget for every call of the adapter; `rate_period_s` is there so that a test
    can run the same limit on a shorter window, nothing else should change it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["open311"] = "open311"
    base_url: str = Field(min_length=1)
    api_key: SecretStr
    jurisdiction_id: str = "bj.12385"
    rate_limit_per_min: float | None = Field(
        default=10, ge=0, description="the published limit; 0 or None: no limit (tests)"
    )
    rate_period_s: float = Field(default=60.0, gt=0)
    rate_margin_s: float = Field(
        default=1.0,
        ge=0,
        description="the calls are paced as if the window were this much longer: a call "
        "that reaches the server late (the first after a quiet spell) must not let the "
        "next ten land inside one of its windows (`adapters.ratelimit`: δ)",
    )
    poll_interval_s: float = Field(default=30.0, gt=0, description="servicerequestupdates windows")
    timeout_s: float = Field(default=10.0, gt=0)
    overlap_s: float = Field(
        default=120.0,
        ge=0,
        description="each window starts this long before the last one ended (clock skew, "
        "late writes); updates read twice are dropped by update_id",
    )
    first_lookback_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="where a feed without a position starts: this long before now",
    )
    max_referral_reads: int = Field(
        default=5,
        ge=1,
        description="GET requests/{id} one feed page spends at most on referrals (a page "
        "stops before the next referral, and the position says where it stopped)",
    )
    token_wait_s: float = Field(default=5.0, ge=0, description="12385 makes the id 5 s later")
    token_polls: int = Field(default=3, ge=1)
    token_poll_interval_s: float = Field(default=2.0, ge=0)
