"""Command line: `flask --app chatconnect …` or the `chatconnect` console script."""

import click
import psycopg
from flask import current_app
from flask.cli import AppGroup, FlaskGroup

from . import migrate

db_cli = AppGroup("db", help="Database schema.")


@db_cli.command("upgrade")
def db_upgrade():
    """Apply the schema and pending migrations (idempotent)."""
    try:
        applied = migrate.upgrade(current_app.config["DATABASE_URL"])
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot reach the database: {error}".strip()) from None
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


def init_app(app) -> None:
    app.cli.add_command(db_cli)


def main():
    from . import create_app
    FlaskGroup(create_app=create_app, help="ChatConnect administration.")()
