"""Realistic random 12345 orders for the simulator: Beijing districts, labour and city
categories, Chinese text, phones as 12345 writes them (mobiles, landlines, empty)."""

from __future__ import annotations

import random
from typing import Any, Final

from adapters.simkit import (
    CITY_SUBJECTS,
    EMPLOYERS,
    LABOUR_SUBJECTS,
    STREETS,
    content_text,
    mobile,
    person,
)
from schemas.hotline12345 import DISTRICTS

URGENCY_WEIGHTS: Final = {"1": 80, "2": 15, "3": 5}
REMARKS: Final = ["对处理结果满意", "基本解决", "问题仍未解决，单位未联系本人", "多次拨打无人接听"]


def landline(rng: random.Random) -> str:
    return f"010-{rng.randint(6000_0000, 8999_9999)}"


def caller_phone(rng: random.Random) -> str:
    """70 % mobiles, 20 % Beijing landlines, 10 % withheld (empty)."""
    roll = rng.random()
    if roll < 0.7:
        return mobile(rng)
    return landline(rng) if roll < 0.9 else ""


def order_fields(rng: random.Random) -> dict[str, Any]:
    """The citizen-facing fields of a random order (mostly labour matters)."""
    if rng.random() < 0.8:
        category, _, subject = rng.choice(LABOUR_SUBJECTS)
    else:
        category, subject = rng.choice(CITY_SUBJECTS)
    area = rng.choice(list(DISTRICTS))
    street = f"{area}{rng.randint(1, 30):03d}" if rng.random() < 0.7 else None
    return {
        "title": subject,
        "content": content_text(rng, subject, rng.choice(EMPLOYERS)),
        "callerName": person(rng),
        "callerPhone": caller_phone(rng),
        "category": category,
        "areaCode": area,
        "streetCode": street,
        "address": f"{DISTRICTS[area]}{rng.choice(STREETS)}{rng.randint(1, 200)}号",
        "urgency": rng.choices(list(URGENCY_WEIGHTS), weights=list(URGENCY_WEIGHTS.values()))[0],
        "confidential": rng.random() < 0.1,
    }


def satisfaction(rng: random.Random) -> str:
    """Mostly satisfied; about one in eight dissatisfied."""
    return rng.choices(["1", "2", "3", "4"], weights=[65, 18, 12, 5])[0]
