"""Command line: `flask --app chatconnect …` or the `chatconnect` console script."""

import signal

import click
import psycopg
from flask import current_app
from flask.cli import AppGroup, FlaskGroup

from . import migrate, passwords
from .db import transaction
from .errors import ApiError
from .chat import TYPING_KEY_PREFIX
from .repositories.events import EventRepository
from .repositories.rate_limits import RateLimitRepository
from .repositories.sessions import SessionRepository
from .repositories.users import UserRepository
from .repositories.webhook_deliveries import WebhookDeliveryRepository
from .validation import parse_fields
from .views.auth import PASSWORD, USERNAME
from .webhooks.worker import Worker

db_cli = AppGroup("db", help="Database schema.")
sessions_cli = AppGroup("sessions", help="Sign-in sessions.")
users_cli = AppGroup("users", help="User accounts.")
events_cli = AppGroup("events", help="The stored event feed.")
webhooks_cli = AppGroup("webhooks", help="Webhook deliveries.")


@db_cli.command("upgrade")
def db_upgrade():
    """Apply the schema and pending migrations (idempotent)."""
    try:
        applied = migrate.upgrade(current_app.config["DATABASE_URL"])
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot reach the database: {error}".strip()) from None
    except psycopg.Error as error:
        # e.g. usernames of the original application that differ only by case
        raise click.ClickException(f"the upgrade stopped: {error}".strip()) from None
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@sessions_cli.command("purge")
def sessions_purge():
    """Delete expired sessions (and those left by the original application)."""
    with transaction() as conn:
        deleted = SessionRepository(conn).purge_expired()
    click.echo(f"deleted {deleted} expired session{'' if deleted == 1 else 's'}")


@events_cli.command("purge")
def events_purge():
    """Delete events older than EVENTS_RETENTION_DAYS (and the typing throttle's old
    counters)."""
    days = current_app.config["EVENTS_RETENTION_DAYS"]
    with transaction() as conn:
        deleted = EventRepository(conn).delete_older_than(days * 86400)
        RateLimitRepository(conn).delete_stale(TYPING_KEY_PREFIX, 3600)
    click.echo(f"deleted {deleted} event{'' if deleted == 1 else 's'} older than "
               f"{days} day{'' if days == 1 else 's'}")


@users_cli.command("create")
@click.option("--username", prompt=True, help="3-64 letters, digits, '_', '.' or '-'.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="8-1024 characters; asked for (hidden) when left out.")
def users_create(username, password):
    """Create a user account, with the same rules as sign-up."""
    try:
        parse_fields({"username": username, "password": password},
                     {"username": USERNAME, "password": PASSWORD})
    except ApiError as error:
        raise click.ClickException(
            "; ".join(f"{name} {problem}" for name, problem in error.fields.items())) from None
    password_hash = passwords.hash_password(password)
    with transaction() as conn:
        user = UserRepository(conn).create(username, password_hash)
    if user is None:
        raise click.ClickException(f"the username {username!r} is taken")
    click.echo(f"created user {user.username} ({user.id})")


@webhooks_cli.command("purge")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 36500),
              help="Keep the delivery log of this many days.")
def webhooks_purge(days):
    """Delete finished deliveries older than --days from the log; run it daily from cron."""
    with transaction() as conn:
        deleted = WebhookDeliveryRepository(conn).purge_finished(days)
    click.echo(f"deleted {deleted} finished deliver{'y' if deleted == 1 else 'ies'}")


@click.command("worker")
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 512),
              help="Deliveries attempted at once by this process.")
@click.option("--per-endpoint", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Deliveries attempted at once to one webhook, by all workers together.")
@click.option("--poll-interval", default=10.0, show_default=True,
              type=click.FloatRange(0.05, 600),
              help="Seconds between looks at the database when no notification wakes it.")
def worker_command(concurrency, per_endpoint, poll_interval):
    """Deliver webhooks until SIGTERM or Ctrl-C; any number of workers may run at once."""
    worker = Worker(current_app.extensions["db_pool"], current_app.config["DATABASE_URL"],
                    concurrency=concurrency, per_endpoint=per_endpoint,
                    poll_interval=poll_interval,
                    allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    click.echo(f"webhook worker started (concurrency {concurrency}, "
               f"{per_endpoint} per endpoint)", err=True)
    worker.run()
    click.echo("webhook worker stopped", err=True)


def init_app(app) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(worker_command)


def main():
    from . import create_app
    FlaskGroup(create_app=create_app, help="ChatConnect administration.")()
