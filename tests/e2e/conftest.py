"""Fixtures of the end-to-end tests (real RabbitMQ, simulators over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from harness import STORES, require_broker

from bridge.demo import Simulators


@pytest.fixture
async def sims() -> AsyncIterator[Simulators]:
    await require_broker()
    async with Simulators(port_12345=0, port_12351=0, rate_limits=False) as running:
        yield running


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every e2e test runs with the node's store on SQLite and again on PostgreSQL (the
    store of replicated deployments), except those that restart the broker, which test
    the transport."""
    if "e2e_store" not in metafunc.fixturenames:
        return
    stores: list[object] = ["sqlite"]
    if metafunc.definition.get_closest_marker("broker_restart") is None:
        stores.append(pytest.param("postgres", marks=pytest.mark.postgres))
    metafunc.parametrize("e2e_store", stores, indirect=True)


@pytest.fixture(autouse=True)
def e2e_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which store `harness.settings_for` gives the test's nodes; PostgreSQL databases
    made for the test are dropped after it."""
    STORES.kind = getattr(request, "param", "sqlite")
    try:
        yield STORES.kind
    finally:
        STORES.kind = "sqlite"
        STORES.drop_all()
