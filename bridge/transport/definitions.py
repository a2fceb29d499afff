"""RabbitMQ definitions (the `import_definitions` / `load_definitions` format).

`python -m bridge.transport.definitions` rewrites deploy/rabbitmq/definitions.json
for the default topology; a unit test checks the committed file equals it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from bridge.transport.topology import Topology

DEFINITIONS_PATH: Final = Path(__file__).resolve().parents[2] / "deploy/rabbitmq/definitions.json"


def definitions(topology: Topology, vhost: str = "/") -> dict[str, Any]:
    """The exchanges, queues and bindings of `topology` as a definitions document."""
    return {
        "exchanges": [
            {
                "name": e.name,
                "vhost": vhost,
                "type": e.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for e in topology.exchanges()
        ],
        "queues": [
            {
                "name": q.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": dict(q.arguments),
            }
            for q in topology.queues()
        ],
        "bindings": [
            {
                "source": b.exchange,
                "vhost": vhost,
                "destination": b.queue,
                "destination_type": "queue",
                "routing_key": b.routing_key,
                "arguments": {},
            }
            for b in topology.bindings()
        ],
    }


def render(topology: Topology) -> str:
    """The file content: stable key order, trailing newline."""
    return json.dumps(definitions(topology), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    # the partners of the example config: the deployment the shipped file is for
    from bridge.app import topology_of
    from bridge.config import load_settings

    example = Path(__file__).resolve().parents[2] / "bridge.example.toml"
    DEFINITIONS_PATH.parent.mkdir(parents=True, exist_ok=True)
    DEFINITIONS_PATH.write_text(render(topology_of(load_settings(example))), encoding="utf-8")
    print(f"wrote {DEFINITIONS_PATH}")
