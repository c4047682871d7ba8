"""`retention apply`: delete what each client's `retention_days` no longer keeps.

Everything goes in small batches, each its own short transaction, so that a million old
messages never make one long transaction or hold locks that live chats wait for: first the
events and messages of the expired conversations, then the (by then empty) conversations, then
the contacts left with no conversation and not seen since the cutoff. A conversation that gets
a message while its old ones are being deleted is no longer expired and stays. Runs may
overlap with traffic and with each other (a second run waits for none: it finds the lock taken
and stops), so a timer may start it at any frequency."""

from dataclasses import dataclass

import psycopg
from flask import current_app

from .db import transaction
from .repositories.clients import ClientRepository
from .repositories.contacts import ContactRepository
from .repositories.conversations import ConversationRepository
from .repositories.events import EventRepository
from .repositories.identity_signatures import IdentitySignatureRepository
from .repositories.messages import MessageRepository

DEFAULT_BATCH_SIZE = 1000
LOCK_KEY = 7_202_611_26  # one run at a time, whatever host starts it


@dataclass
class Deleted:
    client_id: str
    conversations: int = 0
    messages: int = 0
    contacts: int = 0
    batches: int = 0


class AlreadyRunning(Exception):
    """Another `retention apply` holds the lock."""


def apply(batch_size: int = DEFAULT_BATCH_SIZE) -> list[Deleted]:
    """Apply every client's retention period; what was deleted, per client."""
    with psycopg.connect(current_app.config["DATABASE_URL"], autocommit=True) as lock:
        if not lock.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            raise AlreadyRunning("another retention run is in progress")
        with transaction() as conn:
            clients = ClientRepository(conn).with_retention()
        report = [_apply_to_client(row["id"], row["cutoff"], batch_size) for row in clients]
        while _in_batch(lambda conn: IdentitySignatureRepository(conn).purge_expired(
                batch_size)):
            pass
    return report


def _in_batch(work):
    with transaction() as conn:
        return work(conn)


def _apply_to_client(client_id: str, cutoff, batch_size: int) -> Deleted:
    deleted = Deleted(client_id)
    while True:
        ids = _in_batch(lambda conn: ConversationRepository(conn).expired_ids(
            client_id, cutoff, batch_size))
        deleted.batches += 1
        if not ids:
            break
        while _in_batch(lambda conn: EventRepository(conn).delete_batch_for_conversations(
                client_id, ids, batch_size)):
            deleted.batches += 1
        while count := _in_batch(lambda conn: MessageRepository(conn).delete_batch(
                ids, batch_size)):
            deleted.messages += count
            deleted.batches += 1
        deleted.conversations += _in_batch(lambda conn: ConversationRepository(conn)
                                           .delete_expired(client_id, ids, cutoff))
        deleted.batches += 1
    while count := _in_batch(lambda conn: ContactRepository(conn).delete_unused(
            client_id, cutoff, batch_size)):
        deleted.contacts += count
        deleted.batches += 1
    return deleted
