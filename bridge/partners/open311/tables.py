"""The 12385 ↔ 12351 tables: service codes, statuses, and the defaults where neither spec
says (data, visible and tested row by row; `Open311Tables()` is the default set).

Readings written down here, since neither spec fixes them:
- service codes → union service types: `DP-RIGHTS` (维权) is `legal_aid`, `DP-EMPLOY`
  (就业) `skills`, `DP-SUBSIDY` (补贴) `hardship_relief`, `DP-REHAB` (康复) `health`;
  `DP-ACCESS` and `DP-OTHER` have no union counterpart: `other`. A code with no row maps
  to `default_service_type` (`other`): 12385 may add services.
- union service types → service codes (a transferred case without a `transfer.category`
  that is a 12385 code): the inverse where it is one, `psych_care` → `DP-REHAB`, and
  `hardship_relief` → `DP-OTHER`, not `DP-SUBSIDY`: a subsidy request needs a
  `disability_card_no` the union does not hold, and 12385 would refuse it. Any other
  type → `default_service_code` (`DP-OTHER`).
- a request 12385 refers to the union has a deadline only when 12385 set
  `expected_datetime`; else the union's case gets `requested_datetime` +
  `referral_deadline_days` (15, the union's own handling time for partner cases).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from schemas.canonical import Lifecycle

SERVICE_CODE_TO_TYPE: Final = {
    "DP-REHAB": "health",
    "DP-SUBSIDY": "hardship_relief",
    "DP-EMPLOY": "skills",
    "DP-ACCESS": "other",
    "DP-RIGHTS": "legal_aid",
    "DP-OTHER": "other",
}
SERVICE_TYPE_TO_CODE: Final = {
    "legal_aid": "DP-RIGHTS",
    "skills": "DP-EMPLOY",
    "health": "DP-REHAB",
    "psych_care": "DP-REHAB",
    "hardship_relief": "DP-OTHER",
}
KNOWN_SERVICE_CODES: Final = tuple(SERVICE_CODE_TO_TYPE)
"""The codes `transfer.category` may name (`GET services.json` of 12385, spec section 8)."""
CARD_REQUIRED: Final = ("DP-SUBSIDY",)
"""Services whose `disability_card_no` attribute is required: the union cannot create them."""

CREATED_STATUS_TO_LIFECYCLE: Final = {
    "open": Lifecycle.SIGNED,  # the request exists: 12385 has it (no update is written)
    "in_progress": Lifecycle.IN_PROGRESS,
    "fixed": Lifecycle.REPLIED,
    "not_councils_responsibility": Lifecycle.RETURNED,
    "duplicate": Lifecycle.CLOSED,
    "closed": Lifecycle.CLOSED,
}
"""Staff updates on a request the bridge created from a union case (its `native_status`)."""
CREATED_STATUS_TO_PARTNER_STATUS: Final = {
    "open": "accepted",
    "in_progress": "in_progress",
    "fixed": "replied",
    "not_councils_responsibility": "returned",
    "duplicate": "closed",
    "closed": "closed",
}
REFERRED_STATUS_TO_LIFECYCLE: Final = {
    "internal_referral": Lifecycle.DELIVERED,
    "cancelled": Lifecycle.WITHDRAWN,
    "reopen": Lifecycle.REOPENED,
}
"""Staff updates on a request 12385 referred to the union; every other status on such a
request is the union's own post coming back (12385 lists our posts too)."""


class Open311Tables(BaseModel):
    """Every 12385 table, with the defaults above."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_code_to_type: dict[str, str] = Field(default_factory=lambda: dict(SERVICE_CODE_TO_TYPE))
    default_service_type: str = "other"
    service_type_to_code: dict[str, str] = Field(default_factory=lambda: dict(SERVICE_TYPE_TO_CODE))
    default_service_code: str = "DP-OTHER"
    known_service_codes: tuple[str, ...] = KNOWN_SERVICE_CODES
    card_required: tuple[str, ...] = CARD_REQUIRED
    created_status_to_lifecycle: dict[str, Lifecycle] = Field(
        default_factory=lambda: dict(CREATED_STATUS_TO_LIFECYCLE)
    )
    created_status_to_partner_status: dict[str, str] = Field(
        default_factory=lambda: dict(CREATED_STATUS_TO_PARTNER_STATUS)
    )
    referred_status_to_lifecycle: dict[str, Lifecycle] = Field(
        default_factory=lambda: dict(REFERRED_STATUS_TO_LIFECYCLE)
    )
    referral_deadline_days: int = Field(default=15, ge=1)

    def service_type_for(self, code: str) -> str:
        """The union's service type of a 12385 service code (the default row else)."""
        return self.service_code_to_type.get(code, self.default_service_type)

    def service_code_for(self, service_type: str, category: str | None = None) -> str:
        """The 12385 service code of a transferred case: the agent's `category` when it is
        a 12385 code, else the row of its service type (the default row else)."""
        if category in self.known_service_codes:
            return category
        return self.service_type_to_code.get(service_type, self.default_service_code)
