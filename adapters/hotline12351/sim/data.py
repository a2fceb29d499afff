"""Seeded realistic cases the 12351 simulator's agents record."""

from __future__ import annotations

import random
from typing import Any

from adapters.simkit import (
    CITY_SUBJECTS,
    EMPLOYERS,
    LABOUR_SUBJECTS,
    STREETS,
    content_text,
    mobile,
    person,
)
from schemas.hotline12351 import DISTRICT_CODES


def _phone(rng: random.Random) -> str:
    m = mobile(rng)
    return rng.choice(
        [
            f"{m[:3]}-{m[3:7]}-{m[7:]}",
            f"+86 {m}",
            f"+86 {m[:3]} {m[3:7]} {m[7:]}",
            m,
            f"010 {rng.randint(5000, 8999)} {rng.randint(1000, 9999)}",
            f"010-{rng.randint(50000000, 89999999)}",
            "",
        ]
    )


def random_case(rng: random.Random, transfer_share: float) -> dict[str, Any]:
    """Fields of a realistic case an agent records; a share of them goes to 12345."""
    employer = rng.choice(EMPLOYERS)
    transferred = rng.random() < transfer_share
    if transferred:
        category, subject = rng.choice(CITY_SUBJECTS)
        service_type = "other"
    else:
        category, service_type, subject = rng.choice(LABOUR_SUBJECTS)
    fields: dict[str, Any] = {
        "channel": rng.choice(["phone", "phone", "phone", "app", "wechat", "walk_in"]),
        "worker": {
            "name": person(rng),
            "phone": _phone(rng),
            "employer": employer,
            "member_card_no": f"1100{rng.randint(10**11, 10**12 - 1)}"
            if rng.random() < 0.5
            else None,
            "is_member": rng.random() < 0.6,
            "confidential": rng.random() < 0.1,
        },
        "district_code": rng.choice(sorted(DISTRICT_CODES)) if rng.random() < 0.85 else None,
        "service_type": service_type,
        "priority": rng.choices(["normal", "high", "alert"], weights=[75, 20, 5])[0],
        "subject": subject,
        "description": content_text(rng, subject, employer),
        "location": f"{rng.choice(STREETS)}{rng.randint(1, 200)}号",
    }
    if transferred:
        fields["transfer"] = {
            "to": "12345",
            "reason": "不属于工会职责范围，转12345市民热线办理",
            "category": category if rng.random() < 0.8 else None,
        }
    return fields
