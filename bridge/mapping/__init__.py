"""Native ↔ canonical mapping: pure functions and the tables ops may edit.

Arguments in, value out: no I/O, no clock (`read_at`, times come from the data), no
logging. What cannot be mapped raises `bridge.errors.MappingError` (park it).

```
12345 Order ──order_to_referral──▶ Referral ──create_case_request / partner_update_for /
                                              callback_result_for / reopened_for /
                                              withdrawn_for / extension_granted_for /
                                              external_ref_for──▶ 12351 bodies
12351 Case ──case_to_referral───▶ Referral ──create_order_request / reply_request /
                                              return_request / extension_request──▶ 12345 bodies
```
"""

from bridge.mapping.from12345 import order_to_referral
from bridge.mapping.from12351 import case_to_referral, concerns_12345
from bridge.mapping.phones import normalise_phone, phone_for_12345
from bridge.mapping.tables import MappingTables
from bridge.mapping.text import fit, marker, with_first_lines
from bridge.mapping.times import from_beijing, to_beijing, to_rfc3339
from bridge.mapping.to12345 import (
    create_order_request,
    extension_request,
    reply_request,
    return_request,
    sign_request,
)
from bridge.mapping.to12351 import (
    callback_result_for,
    create_case_request,
    extension_granted_for,
    external_ref_for,
    partner_update_for,
    reopened_for,
    withdrawn_for,
)

__all__ = [
    "MappingTables",
    "callback_result_for",
    "case_to_referral",
    "concerns_12345",
    "create_case_request",
    "create_order_request",
    "extension_granted_for",
    "extension_request",
    "external_ref_for",
    "fit",
    "from_beijing",
    "marker",
    "normalise_phone",
    "order_to_referral",
    "partner_update_for",
    "phone_for_12345",
    "reopened_for",
    "reply_request",
    "return_request",
    "sign_request",
    "to_beijing",
    "to_rfc3339",
    "with_first_lines",
    "withdrawn_for",
]
