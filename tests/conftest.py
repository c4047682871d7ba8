import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
import pytest

from chatconnect import create_app, migrate
from chatconnect.realtime.hub import EXTENSION

# Every table of the schema but the migration record, whatever the features add.
TRUNCATE_TABLES = """
DO $$ BEGIN
    EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I', tablename), ', ') || ' CASCADE'
             FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations');
END $$"""
PASSWORD = "correct horse battery"


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def database_url():
    """A database of this test run's own, on TEST_DATABASE_URL's server or a throwaway cluster."""
    server_url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    dbname = f"chatconnect_test_{uuid.uuid4().hex[:8]}"
    if server_url:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        url = with_database(server_url, dbname)
        try:
            migrate.upgrade(url)
            yield url
        finally:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    else:
        from chatconnect.localdb import LocalCluster
        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="ccpg-")), throwaway=True)
        try:
            cluster.start()
            cluster.create_database(dbname)
            url = cluster.url(dbname)
            migrate.upgrade(url)
            yield url
        finally:
            cluster.destroy()


@pytest.fixture
def own_cluster():
    """A cluster this test may stop and start, whatever server the rest of the suite uses."""
    from chatconnect.localdb import LocalCluster
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="ccpg-")), throwaway=True)
    try:
        cluster.start()
        cluster.create_database("chatconnect")
        migrate.upgrade(cluster.url("chatconnect"))
        yield cluster
    finally:
        cluster.destroy()


def app_config(database_url, **overrides) -> dict:
    return {
        "DATABASE_URL": database_url,
        "CHATCONNECT_ENV": "development",
        "SECRET_KEY": "test-secret",
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "4",
        # Tests sign up many users from one address; the limit's own tests lower it again.
        "REGISTER_LIMIT_PER_IP": "100000/3600",
        **overrides,
    }


@pytest.fixture
def make_app(database_url):
    """Build apps on the test database; every pool is closed when the test ends."""
    apps = []

    def make(**overrides):
        app = create_app(app_config(database_url, **overrides))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        hub = app.extensions.get(EXTENSION)
        if hub is not None:
            # Not waiting for the thread: it notices within STOP_CHECK_SECONDS, and every app
            # that served a signed-in or widget request has one.
            hub.stop(timeout=0)
        app.extensions["db_pool"].close()


@pytest.fixture
def app(make_app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TRUNCATE_TABLES)
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def unique_username(prefix="user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class AuthActions:
    def __init__(self, client):
        self.client = client

    def register(self, username=None, password=PASSWORD):
        username = username or unique_username()
        response = self.client.post("/api/auth/register",
                                    json={"username": username, "password": password})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["user"]

    def login(self, username, password=PASSWORD):
        return self.client.post("/api/auth/login", json={"username": username, "password": password})

    def logout(self):
        return self.client.post("/api/auth/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)
