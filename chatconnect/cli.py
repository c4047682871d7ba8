"""Command line: the `chatconnect` console script (`make cli ARGS=…`), or `flask --app chatconnect …`.

Without DATABASE_URL, the console script uses the database of `make run` in instance/postgres,
in development mode, starting its cluster for the command when it is not running."""

import os
import shutil
import signal
import subprocess
import sys
from contextlib import ExitStack

import click
import psycopg
from dotenv import find_dotenv, load_dotenv
from flask import current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext
from psycopg_pool import PoolTimeout

from . import demo, identity, localdb, migrate, passwords, retention
from .db import error_line, transaction
from .errors import ApiError
from .chat import TYPING_KEY_PREFIX
from .repositories.clients import ClientRepository
from .repositories.events import EventRepository
from .repositories.rate_limits import RateLimitRepository
from .repositories.sessions import SessionRepository
from .repositories.users import UserRepository
from .repositories.webhook_deliveries import WebhookDeliveryRepository
from .validation import parse_fields
from .views.auth import PASSWORD, USERNAME
from .webhooks.worker import Worker


class Commands(AppGroup):
    """A group whose commands end with one line, not a traceback, when the database is away."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise click.ClickException(f"cannot reach the database: {error_line(error)}") from None


db_cli = Commands("db", help="Database schema.")
sessions_cli = Commands("sessions", help="Sign-in sessions.")
users_cli = Commands("users", help="User accounts.")
events_cli = Commands("events", help="The stored event feed.")
webhooks_cli = Commands("webhooks", help="Webhook deliveries.")
demo_cli = Commands("demo", help="The demo of development mode.")
REENCRYPT_BATCH = 500
retention_cli = Commands("retention", help="Deleting old conversations (clients' retention_days).")
identity_cli = Commands("identity", help="Identity secrets of clients.")


@db_cli.command("upgrade")
def db_upgrade():
    """Apply the schema and pending migrations (idempotent)."""
    try:
        applied = migrate.upgrade(current_app.config["DATABASE_URL"])
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot reach the database: {error_line(error)}") from None
    except psycopg.Error as error:
        # e.g. usernames of the original application that differ only by case
        raise click.ClickException(f"the upgrade stopped: {error_line(error)}") from None
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@db_cli.command("shell")
def db_shell():
    """Open psql on the database."""
    psql = shutil.which("psql")
    if psql is None:
        bundled = localdb.find_bindir() / "psql"
        if not bundled.is_file():
            raise click.ClickException("psql was not found; install it (apt-get install postgresql-client)")
        psql = str(bundled)
    # Ctrl-C belongs to psql (it cancels the running query), not to this process.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        returncode = subprocess.run([psql, current_app.config["DATABASE_URL"]], check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.exit(returncode)


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


@demo_cli.command("seed")
def demo_seed():
    """Create the demo owner and client once (development mode only)."""
    if current_app.config["ENV"] != "development":
        raise click.ClickException("the demo exists in development mode only "
                                   "(CHATCONNECT_ENV=development)")
    with transaction() as conn:
        client, created = demo.seed(conn)
    click.echo(("created" if created else "found") + f" the demo client {client['public_api_key']}"
               f" (agent page sign-in: {demo.USERNAME} / {demo.PASSWORD})")


@webhooks_cli.command("purge")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 36500),
              help="Keep the delivery log of this many days.")
def webhooks_purge(days):
    """Delete finished deliveries older than --days from the log; run it daily from cron."""
    with transaction() as conn:
        deleted = WebhookDeliveryRepository(conn).purge_finished(days)
    click.echo(f"deleted {deleted} finished deliver{'y' if deleted == 1 else 'ies'}")


@click.command("worker")
@with_appcontext  # the console script's group provides no app context of its own
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
@retention_cli.command("apply")
@click.option("--batch-size", type=click.IntRange(1, 100_000),
              default=retention.DEFAULT_BATCH_SIZE, show_default=True,
              help="Rows deleted per transaction.")
def retention_apply(batch_size):
    """Delete conversations past their client's retention_days, with their messages, and the
    contacts left with none. Safe to run at any frequency."""
    try:
        report = retention.apply(batch_size)
    except retention.AlreadyRunning as error:
        click.echo(str(error))
        return
    total = retention.Deleted("all clients")
    for deleted in report:
        if deleted.conversations or deleted.contacts:
            click.echo(f"client {deleted.client_id}: {_deleted_line(deleted)}")
        total.conversations += deleted.conversations
        total.messages += deleted.messages
        total.contacts += deleted.contacts
        total.batches += deleted.batches
    click.echo(f"retention applied to {len(report)} client{'' if len(report) == 1 else 's'}: "
               f"{_deleted_line(total)}")


def _deleted_line(deleted) -> str:
    return (f"deleted {deleted.conversations} conversations, {deleted.messages} messages and "
            f"{deleted.contacts} contacts in {deleted.batches} batches")


@identity_cli.command("reencrypt")
def identity_reencrypt():
    """Seal every identity secret under the first key of IDENTITY_ENCRYPTION_KEYS (run after
    adding a new key in front; then the old key may be removed)."""
    box = identity.secret_box()
    count, unopened, after_id = 0, [], ""
    while True:
        with transaction() as conn:
            clients = ClientRepository(conn)
            rows = clients.secrets_to_reseal(box.current_key_id, after_id, REENCRYPT_BATCH)
            for row in rows:
                try:
                    secret = box.open(row["id"], row["identity_secret_encrypted"])
                except identity.UndecryptableSecret as error:
                    unopened.append(str(error))
                    continue
                clients.replace_sealed_secret(row["id"], box.seal(row["id"], secret))
                count += 1
        if len(rows) < REENCRYPT_BATCH:
            break
        after_id = rows[-1]["id"]
    click.echo(f"re-encrypted {count} identity secret{'' if count == 1 else 's'}")
    if unopened:
        raise click.ClickException("\n".join(unopened))


def init_app(app) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(retention_cli)
    app.cli.add_command(identity_cli)


class ConsoleApp:
    """The app of the console script; without DATABASE_URL, on the `make run` database."""

    def __init__(self, resources: ExitStack):
        self.resources = resources

    def create_app(self):
        from . import create_app
        if os.environ.get("DATABASE_URL", "").strip():
            _check_reachable(os.environ["DATABASE_URL"])
        else:
            if not (localdb.DEVELOPMENT_DATA_DIR.exists() or os.path.exists("wsgi.py")):
                raise click.ClickException(
                    "DATABASE_URL is not set, and this is not the project directory, whose "
                    f"{localdb.DEVELOPMENT_DATA_DIR} the command would use otherwise")
            say = lambda line: click.echo(line, err=True)  # noqa: E731
            try:
                os.environ["DATABASE_URL"] = self.resources.enter_context(
                    localdb.development_database(say))
            except localdb.LocalClusterError as error:
                raise click.ClickException(f"{error} (the local database is the one of `make run`)") from None
            if not os.environ.get("CHATCONNECT_ENV", "").strip():
                os.environ["CHATCONNECT_ENV"] = "development"
            migrate.upgrade(os.environ["DATABASE_URL"])
        app = create_app()
        # Closed before the cluster is stopped, or it would count as another process's use.
        self.resources.callback(app.extensions["db_pool"].close)
        return app


def _check_reachable(database_url: str) -> None:
    try:
        psycopg.connect(database_url, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot reach the database: {error_line(error)}") from None


def main():
    load_dotenv(find_dotenv(usecwd=True))
    group = click.Group("chatconnect", help="ChatConnect administration.",
                        commands=[db_cli, sessions_cli, users_cli, events_cli, webhooks_cli,
                                  retention_cli, identity_cli, demo_cli, worker_command])
    with ExitStack() as resources:
        group.main(prog_name="chatconnect", obj=ScriptInfo(create_app=ConsoleApp(resources).create_app))
