"""The demo of development mode: a demo owner with one client, made once by `demo seed`."""

import json

from . import passwords
from .repositories.clients import ClientRepository
from .repositories.users import UserRepository
from .repositories.widget_styles import WidgetStyleRepository
from .repositories.widgets import WidgetRepository

USERNAME = "demo"
# Development only: the demo pages fill it in, so that anyone can try the agent side.
PASSWORD = "demo-password"
CLIENT_NAME = "Demo shop"
WELCOME = "Hi! This is the ChatConnect demo. Write something, then answer it from the agent page."


def demo_client(conn):
    """The demo owner's first client, or None before `demo seed`."""
    credentials = UserRepository(conn).get_credentials(USERNAME)
    if credentials is None:
        return None
    clients = json.loads(ClientRepository(conn).page_json_for_owner(credentials[0].id, 1)["items"])
    return clients[0] if clients else None


def seed(conn) -> tuple[dict, bool]:
    """The demo client, created with its owner the first time; (client, created now)."""
    client = demo_client(conn)
    if client is not None:
        return client, False
    users = UserRepository(conn)
    user = users.create(USERNAME, passwords.hash_password(PASSWORD)) \
        or users.get_credentials(USERNAME)[0]
    client = ClientRepository(conn).create(user.id, CLIENT_NAME, [])
    WidgetRepository(conn).create(client["id"])
    WidgetRepository(conn).update(client["id"], user.id, {"welcome_message": WELCOME,
                                                          "widget_name": "Demo support"})
    WidgetStyleRepository(conn).create(client["id"])
    WidgetStyleRepository(conn).update(client["id"], user.id,
                                       {"header_text": "We usually answer within minutes"})
    return client, True
