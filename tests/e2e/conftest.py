"""Fixtures of the end-to-end tests (real RabbitMQ, simulators over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from harness import STORES, require_broker
from sim_actions import refused_calls

from bridge.demo import Simulators


@pytest.fixture
async def sims(request: pytest.FixtureRequest) -> AsyncIterator[Simulators]:
    """Both simulators. After the test, neither may have refused a call of the bridge
    (a call the other side refuses in a normal lifecycle is a bug), unless the test says
    it provokes refusals on purpose (`@pytest.mark.refusals("why")`: faults, poison)."""
    await require_broker()
    async with Simulators(free_ports=True, rate_limits=False) as running:
        yield running
        if request.node.get_closest_marker("refusals") is None:
            refused = refused_calls(running)
            assert refused == [], "calls the simulators refused:\n" + "\n".join(refused)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every e2e test runs with the node's store on SQLite and again on PostgreSQL (the
    store of replicated deployments), except those that restart the broker, which test
    the transport, the large scenarios (`large`: hundreds of referrals), and those whose
    subject is not the store (`one_store`), which run on SQLite only to keep the suite
    short."""
    if "e2e_store" not in metafunc.fixturenames:
        return
    stores: list[object] = ["sqlite"]
    one_store = ("broker_restart", "large", "one_store")
    if not any(metafunc.definition.get_closest_marker(m) for m in one_store):
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
