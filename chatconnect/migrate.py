"""`db upgrade`: pending migrations, each in its own transaction, then the idempotent schema.

Migrations change tables that may already exist (from the original application or an older
release); schema.sql then creates whatever is missing. Both are safe to run again."""

from pathlib import Path

import psycopg

PACKAGE_DIR = Path(__file__).parent
SCHEMA_FILE = PACKAGE_DIR / "schema.sql"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
SELECT_APPLIED = "SELECT version FROM schema_migrations"
INSERT_APPLIED = "INSERT INTO schema_migrations (version) VALUES (%(version)s)"
# One upgrade at a time, whoever runs it (several hosts may deploy at once).
LOCK_KEY = 7_202_611_25


def upgrade(database_url: str) -> list[str]:
    """Apply what is pending; return the names of the migrations applied now."""
    applied_now = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        conn.execute(CREATE_MIGRATIONS_TABLE)
        applied = {row[0] for row in conn.execute(SELECT_APPLIED)}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.stem in applied:
                continue
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute(INSERT_APPLIED, {"version": path.stem})
            applied_now.append(path.stem)
        with conn.transaction():
            conn.execute(SCHEMA_FILE.read_text())
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now
