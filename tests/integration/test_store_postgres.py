"""The store's shared behaviour on the real local PostgreSQL.

The module creates its own database (``hb_test_<random>``) and drops it at the
end; every test starts from an empty ``public`` schema, so migrations run fresh
each time. Set ``HB_TEST_POSTGRES_URL`` to use a server other than
``postgresql://postgres@127.0.0.1:5432/postgres`` (the maintenance database).
An unreachable server fails the tests: it is never a silent skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.unit.test_store import StoreBehaviour
from tests.unit.test_store_jobs import JobsBehaviour
from tests.unit.test_store_retention import RetentionBehaviour

pytestmark = pytest.mark.postgres

ADMIN_URL = os.environ.get("HB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HOW_TO_START = (
    "PostgreSQL is not reachable at {where} ({error}). These tests need it: start it "
    "with `sudo service postgresql start` (or `sudo pg_ctlcluster 15 main start`), "
    "with user `postgres` and trust auth on 127.0.0.1:5432, or point "
    "HB_TEST_POSTGRES_URL at another server; deselect with `-m 'not postgres'`."
)


def _dsn(database: str) -> str:
    return make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A database of this module's own, dropped at the end; yields its URL."""
    name = f"hb_test_{secrets.token_hex(6)}"
    admin = make_url(ADMIN_URL)
    error: str | None = None
    try:
        asyncio.run(_execute(ADMIN_URL, f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        error = type(exc).__name__
    if error is not None:  # failed outside the except block: no chained traceback
        where = f"{admin.host}:{admin.port or 5432}"
        pytest.fail(HOW_TO_START.format(where=where, error=error), pytrace=False)
    try:
        yield _dsn(name)
    finally:
        asyncio.run(_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class TestStoreOnPostgres(StoreBehaviour):
    """The shared behaviour on PostgreSQL."""

    @pytest.fixture
    async def db_url(self, pg_database: str) -> str:
        await _execute(pg_database, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
        return pg_database

    async def test_concurrent_migrations_from_two_replicas_both_succeed(self, db_url: str) -> None:
        """Two replicas starting at once: the advisory lock serialises the upgrade."""
        from bridge.store import Store
        from bridge.store.engine import head_revision

        stores = await asyncio.gather(Store.connect(db_url), Store.connect(db_url))
        try:
            assert [await s.schema_revision() for s in stores] == [head_revision()] * 2
        finally:
            for store in stores:
                await store.aclose()


class TestRetentionOnPostgres(RetentionBehaviour):
    """Outbox retries and retention on PostgreSQL."""

    @pytest.fixture
    async def db_url(self, pg_database: str) -> str:
        await _execute(pg_database, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
        return pg_database


class TestJobsOnPostgres(JobsBehaviour):
    """Dead letters by filter, jobs and reconciliation runs on PostgreSQL."""

    @pytest.fixture
    async def db_url(self, pg_database: str) -> str:
        await _execute(pg_database, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
        return pg_database
