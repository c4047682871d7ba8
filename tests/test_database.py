"""Schema upgrades, settings from .env, and behaviour while the database is away."""

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
import pytest

from chatconnect import migrate

from .conftest import app_config, with_database

REPO = Path(__file__).resolve().parent.parent
ORIGINAL_APP_SCHEMA = (Path(__file__).parent / "fixtures" / "original_app_schema.sql").read_text()
CONVERSATIONS_BEFORE_CONTACTS = (
    Path(__file__).parent / "fixtures" / "conversations_before_contacts.sql").read_text()

SCHEMA_SHAPE = {
    "columns": """
        SELECT table_name, column_name, data_type, column_default, is_nullable
        FROM information_schema.columns WHERE table_schema = 'public'""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "triggers": "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal",
}


@pytest.fixture
def new_database(database_url):
    """Factory of empty databases on the test server, dropped at the end."""
    admin_url = with_database(database_url, "postgres")
    names = []

    def create():
        name = f"chatconnect_extra_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return with_database(database_url, name)

    yield create
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def schema_shape(url):
    with psycopg.connect(url) as conn:
        return {name: sorted(conn.execute(sql).fetchall()) for name, sql in SCHEMA_SHAPE.items()}


def test_upgrade_of_an_empty_database_then_again_is_a_no_op(new_database):
    url = new_database()
    every_migration = sorted(path.stem for path in migrate.MIGRATIONS_DIR.glob("*.sql"))
    assert migrate.upgrade(url) == every_migration
    shape = schema_shape(url)
    assert {row[0] for row in shape["columns"]} >= {"users", "clients", "client_widgets",
                                                    "session", "conversations", "messages"}
    assert migrate.upgrade(url) == []
    assert schema_shape(url) == shape


def test_upgrade_of_an_original_app_database_keeps_rows_and_matches_a_fresh_one(new_database):
    original, fresh = new_database(), new_database()
    with psycopg.connect(original) as conn:
        conn.execute(ORIGINAL_APP_SCHEMA)
    migrate.upgrade(original)
    migrate.upgrade(original)
    migrate.upgrade(fresh)

    assert schema_shape(original) == schema_shape(fresh)
    with psycopg.connect(original) as conn:
        assert conn.execute("SELECT username, password FROM users").fetchall() == [
            ("olduser", "scrypt:32768:8:1$salt$hash")]
        assert conn.execute("SELECT name, public_api_key, allowed_domains FROM clients").fetchall() \
            == [("Old shop", "pk_oldkey", ["shop.example.com"])]
        assert conn.execute("SELECT primary_color, widget_name FROM client_widgets").fetchall() \
            == [("#ff0000", "Support")]
        assert conn.execute("SELECT sid FROM session").fetchall() == [("oldsid",)]
        assert conn.execute(
            "SELECT client_id, theme, font_family, border_radius, offset_x, offset_y, "
            "launcher_icon, show_on_mobile, header_text FROM widget_styles").fetchall() == [
            ("5d0f2b7e-8c1d-4e8f-a1c3-6b9e2f4d7a10", "light", "system", 12, 20, 20, "chat",
             True, "")]
        # The widget foreign key keeps its name and now cascades.
        conn.execute("DELETE FROM clients")
        assert conn.execute("SELECT count(*) FROM client_widgets").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM widget_styles").fetchone() == (0,)


def test_upgrade_gives_clients_of_a_release_without_widget_styles_their_default_style(
        new_database):
    url = new_database()
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (id, username, password) VALUES ('u1', 'ann', 'x')")
        conn.execute("INSERT INTO clients (id, user_id, name, public_api_key) "
                     "VALUES ('c1', 'u1', 'Shop', 'pk_one'), ('c2', 'u1', 'Blog', 'pk_two')")
        # The release before: no widget_styles table, migration 0005 not applied.
        conn.execute("DROP TABLE widget_styles")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0005_widget_styles'")
    assert migrate.upgrade(url) == ["0005_widget_styles"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT client_id, theme, border_radius FROM widget_styles "
                            "ORDER BY client_id").fetchall() == [("c1", "light", 12),
                                                                 ("c2", "light", 12)]
    assert migrate.upgrade(url) == []
    fresh = new_database()
    migrate.upgrade(fresh)
    assert schema_shape(url) == schema_shape(fresh)


def test_upgrade_gives_every_existing_conversation_a_contact_and_keeps_its_token(
        new_database, make_app):
    original, fresh = new_database(), new_database()
    with psycopg.connect(original) as conn:
        conn.execute(ORIGINAL_APP_SCHEMA)
        conn.execute(CONVERSATIONS_BEFORE_CONTACTS)
        before = conn.execute("SELECT id, client_id, status, visitor_name, visitor_email, tags, "
                              "created_at, last_message_at FROM conversations ORDER BY id").fetchall()
        messages = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
    migrate.upgrade(original)
    migrate.upgrade(original)
    migrate.upgrade(fresh)

    assert schema_shape(original) == schema_shape(fresh)
    with psycopg.connect(original) as conn:
        assert conn.execute("SELECT id, client_id, status, visitor_name, visitor_email, tags, "
                            "created_at, last_message_at FROM conversations "
                            "ORDER BY id").fetchall() == before
        assert conn.execute("SELECT * FROM messages ORDER BY id").fetchall() == messages
        contacts = conn.execute(
            "SELECT v.id, k.client_id, k.external_id, k.name, k.email, k.verified, "
            "k.created_at, k.last_seen_at FROM conversations v "
            "JOIN contacts k ON k.id = v.contact_id ORDER BY v.id").fetchall()
        assert conn.execute("SELECT count(*) FROM contacts").fetchone() == (2,)
    vera, anonymous = before
    # Each its own anonymous contact, last seen at the visitor's latest message.
    assert contacts[0][1:] == (vera[1], None, "Vera", "vera@example.org", False, vera[6],
                               datetime(2026, 1, 10, 9, 10, tzinfo=UTC))
    assert contacts[1][1:] == (anonymous[1], None, None, None, False, anonymous[6], anonymous[6])

    # The visitor tokens issued before contacts still open their conversations, and only those.
    app = make_app(DATABASE_URL=original)
    http = app.test_client()
    for token, conversation, other in (("old-token-vera", vera, anonymous),
                                       ("old-token-anon", anonymous, vera)):
        response = http.get(f"/api/public/conversations/{conversation[0]}/messages",
                            headers={"X-Visitor-Token": token})
        assert response.status_code == 200
        assert [m["conversation_id"] for m in response.get_json()["items"]] \
            == [str(conversation[0])] * (3 if conversation is vera else 2)
        assert http.get(f"/api/public/conversations/{other[0]}/messages",
                        headers={"X-Visitor-Token": token}).status_code == 404
    listed = http.get("/api/public/widgets/pk_oldkey/conversations",
                      headers={"X-Visitor-Token": "old-token-vera"}).get_json()
    assert [item["id"] for item in listed["items"]] == [str(vera[0])]
    assert listed["items"][0]["contact_id"] == str(vera[0])


def run_python(code, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "SECRET_KEY", "CHATCONNECT_ENV")}
    env["PYTHONPATH"] = str(REPO)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_wsgi_reads_settings_from_dotenv(tmp_path, database_url):
    (tmp_path / ".env").write_text(
        f"DATABASE_URL={database_url}\nSECRET_KEY=from-dotenv\nDB_POOL_MAX_SIZE=7\n")
    result = run_python(["-c", "import wsgi; c = wsgi.app.config; "
                               "print(c['SECRET_KEY'], c['DB_POOL_MAX_SIZE'])"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from-dotenv", "7"]


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "flask", "--app", "chatconnect", "db", "upgrade"],
    [str(Path(sys.executable).parent / "chatconnect"), "db", "upgrade"],
])
def test_cli_reads_settings_from_dotenv(tmp_path, new_database, command):
    url = new_database()
    (tmp_path / ".env").write_text(f"DATABASE_URL={url}\nCHATCONNECT_ENV=development\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('conversations')").fetchone() == ("conversations",)


@pytest.mark.parametrize("env, variable", [
    ({}, "DATABASE_URL"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://localhost/x"}, "SECRET_KEY"),
    ({"DATABASE_URL": "postgresql://localhost/x", "SECRET_KEY": "s", "DB_POOL_MAX_SIZE": "ten"},
     "DB_POOL_MAX_SIZE"),
    ({"DATABASE_URL": "postgresql://localhost/x", "CHATCONNECT_ENV": "development",
      "LOGIN_LIMIT_PER_IP": "lots"}, "LOGIN_LIMIT_PER_IP"),
])
def test_bad_setting_stops_startup_with_one_line_naming_it(tmp_path, env, variable):
    result = run_python(["-c", "import wsgi"], tmp_path, env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert variable in result.stderr


def wait_for_status(client, path, status, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_database_outage_gives_503_and_the_app_recovers_by_itself(own_cluster, make_app):
    from chatconnect import create_app
    app = create_app(app_config(own_cluster.url("chatconnect"), DB_POOL_TIMEOUT="2"))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200

        own_cluster.stop()
        started = time.monotonic()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"
        response = client.post("/api/auth/login", json={"username": "someone", "password": "x"})
        assert response.status_code == 503
        assert time.monotonic() - started < 10  # bounded by the pool timeout, never a hang
        assert client.get("/healthz").status_code == 200

        own_cluster.start()
        assert wait_for_status(client, "/readyz", 200).status_code == 200
    finally:
        app.extensions["db_pool"].close()


def test_app_started_while_the_database_is_down_serves_once_it_is_up(own_cluster):
    from chatconnect import create_app
    own_cluster.stop()
    app = create_app(app_config(own_cluster.url("chatconnect"), DB_POOL_TIMEOUT="1"))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 503
        own_cluster.start()
        assert wait_for_status(client, "/readyz", 200).status_code == 200
    finally:
        app.extensions["db_pool"].close()


def test_a_pooled_connection_the_server_ended_is_replaced_before_a_request_uses_it(
        make_app, database_url):
    app = make_app(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="1")
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    with app.extensions["db_pool"].connection() as conn:
        backend_pid = conn.info.backend_pid
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                            (backend_pid,)).fetchone():
            time.sleep(0.05)

    assert client.get("/readyz").status_code == 200


def test_upgrade_refusing_the_data_says_why_in_one_error(new_database, tmp_path):
    url = new_database()
    with psycopg.connect(url) as conn:
        conn.execute(ORIGINAL_APP_SCHEMA)
        conn.execute("INSERT INTO users (username, password) VALUES ('OLDUSER', 'x')")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(DATABASE_URL=url, CHATCONNECT_ENV="development")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "chatconnect", "db",
                             "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "users_username_key_unique" in result.stderr
    assert "Traceback" not in result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (2,)


KNOWLEDGE_BASE_SHAPE = {
    "configurations": """
        SELECT c.cfgname, t.alias, array_agg(d.dictname ORDER BY m.mapseqno)
        FROM pg_ts_config c JOIN pg_ts_config_map m ON m.mapcfg = c.oid
        JOIN ts_token_type('default') t ON t.tokid = m.maptokentype
        JOIN pg_ts_dict d ON d.oid = m.mapdict
        WHERE c.cfgnamespace = 'public'::regnamespace GROUP BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_function_identity_arguments(oid), provolatile
        FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'kb\\_%'""",
}
FIND_ARTICLE = """
SELECT slug FROM knowledge_base
WHERE search_vector @@ websearch_to_tsquery(kb_search_config(locale), %s)"""


def knowledge_base_shape(url):
    with psycopg.connect(url) as conn:
        return {name: sorted(conn.execute(query).fetchall())
                for name, query in KNOWLEDGE_BASE_SHAPE.items()}


def test_upgrade_of_an_original_app_database_adds_a_searchable_knowledge_base(new_database):
    original, fresh = new_database(), new_database()
    with psycopg.connect(original) as conn:
        conn.execute(ORIGINAL_APP_SCHEMA)
    migrate.upgrade(original)
    migrate.upgrade(fresh)
    assert knowledge_base_shape(original) == knowledge_base_shape(fresh)
    with psycopg.connect(original) as conn:
        conn.execute("""
            INSERT INTO knowledge_base (client_id, title, slug, body_text, status, locale)
            SELECT id, 'Öffnungszeiten', 'hours', 'Unsere Häuser öffnen um acht.', 'published',
                   'de'
            FROM clients WHERE public_api_key = 'pk_oldkey'""")
        assert conn.execute(FIND_ARTICLE, ("haus offnungszeit",)).fetchall() == [("hours",)]
        assert conn.execute("SELECT kb_search_config('de'), kb_search_config('pt-BR'), "
                            "kb_search_config('tlh')").fetchone() == (
            "kb_german", "kb_portuguese", "kb_simple")


def test_an_upgrade_that_finds_unaccent_makes_stored_articles_accent_insensitive(new_database):
    """As on a server where the unaccent extension was missing when the table was made."""
    url = new_database()
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        for (config,) in conn.execute("SELECT cfgname FROM pg_ts_config "
                                      "WHERE cfgnamespace = 'public'::regnamespace").fetchall():
            dictionary = "simple" if config == "kb_simple" else config[3:] + "_stem"
            conn.execute(sql.SQL("ALTER TEXT SEARCH CONFIGURATION {} ALTER MAPPING FOR hword, "
                                 "hword_part, word WITH {}").format(
                sql.Identifier(config), sql.Identifier(dictionary)))
        conn.execute("INSERT INTO users (id, username, password) VALUES ('u1', 'u', 'x')")
        conn.execute("INSERT INTO clients (id, user_id, name, public_api_key) "
                     "VALUES ('c1', 'u1', 'Shop', 'pk_1')")
        conn.execute("INSERT INTO knowledge_base (client_id, title, slug, body_text) "
                     "VALUES ('c1', 'Le café', 'cafe', 'Crème brûlée')")
        assert conn.execute(FIND_ARTICLE, ("creme",)).fetchall() == []
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        assert conn.execute(FIND_ARTICLE, ("creme",)).fetchall() == [("cafe",)]
        assert conn.execute(FIND_ARTICLE, ("crème",)).fetchall() == [("cafe",)]
