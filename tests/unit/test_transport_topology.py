"""Topology names, routing and the shipped RabbitMQ definitions."""

import json

import pytest

from bridge.transport.definitions import DEFINITIONS_PATH, definitions, render
from bridge.transport.topology import Topology

TARGETS = ("12345", "12351")
"""The partners of the example config (`bridge.example.toml`), whose definitions ship."""


def test_committed_definitions_equal_generated() -> None:
    """Regenerate the file with `python -m bridge.transport.definitions`."""
    assert DEFINITIONS_PATH.read_text(encoding="utf-8") == render(Topology(targets=TARGETS))


def test_the_default_ladder_starts_short_and_spans_the_maintenance_window() -> None:
    """A single transient failure costs seconds; what keeps failing is retried for
    longer than 12351's 30-minute maintenance window before it is parked."""
    delays = Topology(targets=TARGETS).retry_delays_s
    assert delays[0] <= 2
    assert sum(delays) > 30 * 60


def test_definitions_cover_default_layout() -> None:
    doc = definitions(Topology(targets=TARGETS))
    queues = {q["name"]: q["arguments"] for q in doc["queues"]}
    assert len(queues) == 2 * 2 * 4 + 6 + 1  # work queues, the retry ladder, parking
    assert queues["hotline-bridge.to-12351.alert.3"] == {
        "x-queue-type": "quorum",
        "x-single-active-consumer": True,
        "x-delivery-limit": 20,
        "x-dead-letter-exchange": "hotline-bridge.parking",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    retry = queues["hotline-bridge.retry.300s.v1"]
    assert retry["x-message-ttl"] == 300_000
    assert retry["x-dead-letter-exchange"] == "hotline-bridge.referrals"
    assert "x-dead-letter-routing-key" not in retry
    assert json.loads(render(Topology(targets=TARGETS))) == json.loads(json.dumps(doc))


def test_routing_key_is_stable_and_sharded_by_referral() -> None:
    topology = Topology(targets=TARGETS, shards=4)
    key = topology.routing_key("12351", "R-1", early_warning=False)
    assert key == topology.routing_key("12351", "R-1", early_warning=False)
    assert key.startswith("to.12351.normal.")
    assert topology.routing_key("12345", "R-1", early_warning=True).startswith("to.12345.alert.")
    shards = {topology.shard_of(f"R-{i}") for i in range(100)}
    assert shards == {0, 1, 2, 3}
    # crc32, not hash(): every process and replica agrees (crc32(b"R-1") = 0xE18D7919).
    assert topology.shard_of("R-1") == 0xE18D7919 % 4


def test_unknown_target_and_shard_are_refused() -> None:
    topology = Topology(targets=TARGETS)
    with pytest.raises(ValueError, match="unknown target"):
        topology.routing_key("99999", "R-1", early_warning=False)
    with pytest.raises(ValueError, match="shards"):
        topology.work_queues("12345", shards=(4,))


def test_retry_ladder() -> None:
    topology = Topology(targets=TARGETS, retry_delays_s=(10, 60))
    assert [topology.retry_delay(a) for a in range(3)] == [10, 60, None]
    assert topology.retry_name(60) == "hotline-bridge.retry.60s.v1"
