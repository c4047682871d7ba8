"""The users table."""

import string
from dataclasses import dataclass
from datetime import datetime

from flask_login import UserMixin

# Usernames are told apart with their ASCII letters folded to lower case and nothing else
# changed, here (sign-in lookups, throttle keys) and in PostgreSQL (the unique index
# users_username_key_unique on the same translate()), whatever the locale. Unicode case
# mappings are not used: Python's and PostgreSQL's differ ('İ'.lower() is two characters in
# Python, one in PostgreSQL), and no spelling with a non-ASCII letter reaches an ASCII name.
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def username_key(username: str) -> str:
    """The form in which two usernames are the same name: ASCII letters in lower case."""
    return username.translate(_ASCII_FOLD)


# Any unique violation (the name, or the name in any case) means the username is taken.
INSERT_USER = """
INSERT INTO users (username, password) VALUES (%(username)s, %(password_hash)s)
ON CONFLICT DO NOTHING
RETURNING id, username, created_at, credentials_version"""

SELECT_USER_BY_ID = """
SELECT id, username, created_at, credentials_version FROM users WHERE id = %(id)s"""

SELECT_CREDENTIALS_BY_USERNAME = """
SELECT id, username, created_at, credentials_version, password AS password_hash
FROM users
WHERE translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
      = %(username_key)s"""

SELECT_USERNAME_TAKEN = """
SELECT 1 FROM users
WHERE translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
      = %(username_key)s"""

SELECT_CREDENTIALS_CURRENT = """
SELECT 1 FROM users WHERE id = %(id)s AND credentials_version = %(credentials_version)s"""

SELECT_PASSWORD_HASH = "SELECT password AS password_hash FROM users WHERE id = %(id)s"

# A new password: only if the stored hash and version are still those the request was checked
# against, so that a concurrent change is never undone. Bumping the version ends every session
# and token made with the old one, including any created while this transaction runs.
CHANGE_PASSWORD = """
UPDATE users SET password = %(new_hash)s, credentials_version = credentials_version + 1
WHERE id = %(id)s AND password = %(old_hash)s AND credentials_version = %(credentials_version)s
RETURNING credentials_version"""

# The same password, hashed at a stronger cost: sessions and tokens stay valid.
UPGRADE_PASSWORD_HASH = """
UPDATE users SET password = %(new_hash)s WHERE id = %(id)s AND password = %(old_hash)s"""


@dataclass(frozen=True)
class User(UserMixin):
    id: str
    username: str
    created_at: datetime
    # The version of the credentials this user was authenticated with (see CHANGE_PASSWORD).
    credentials_version: int


def user_from_row(row) -> User:
    return User(id=row["id"], username=row["username"], created_at=row["created_at"],
                credentials_version=row["credentials_version"])


class UserRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, username: str, password_hash: str) -> User | None:
        """The new user, or None when the username is taken (in any letter case)."""
        row = self.conn.execute(
            INSERT_USER, {"username": username, "password_hash": password_hash}).fetchone()
        return user_from_row(row) if row else None

    def get(self, user_id: str) -> User | None:
        row = self.conn.execute(SELECT_USER_BY_ID, {"id": user_id}).fetchone()
        return user_from_row(row) if row else None

    def get_credentials(self, username: str):
        """(User, password hash) for a username matched by username_key, or None."""
        row = self.conn.execute(SELECT_CREDENTIALS_BY_USERNAME,
                                {"username_key": username_key(username)}).fetchone()
        return (user_from_row(row), row["password_hash"]) if row else None

    def username_taken(self, username: str) -> bool:
        """Whether an account has this name (by username_key)."""
        return self.conn.execute(SELECT_USERNAME_TAKEN,
                                 {"username_key": username_key(username)}).fetchone() is not None

    def credentials_current(self, user_id: str, credentials_version: int) -> bool:
        """Whether the user's credentials are still at `credentials_version`."""
        return self.conn.execute(SELECT_CREDENTIALS_CURRENT, {
            "id": user_id, "credentials_version": credentials_version}).fetchone() is not None

    def get_password_hash(self, user_id: str) -> str | None:
        row = self.conn.execute(SELECT_PASSWORD_HASH, {"id": user_id}).fetchone()
        return row["password_hash"] if row else None

    def change_password(self, user_id: str, old_hash: str, new_hash: str,
                        credentials_version: int) -> int | None:
        """Store new_hash and bump the credentials version, if the stored hash and version are
        still old_hash and credentials_version; returns the new version, or None."""
        row = self.conn.execute(CHANGE_PASSWORD, {
            "id": user_id, "old_hash": old_hash, "new_hash": new_hash,
            "credentials_version": credentials_version}).fetchone()
        return row["credentials_version"] if row else None

    def upgrade_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Store new_hash if the stored hash is still old_hash; False if it changed meanwhile."""
        cursor = self.conn.execute(UPGRADE_PASSWORD_HASH,
                                   {"id": user_id, "old_hash": old_hash, "new_hash": new_hash})
        return cursor.rowcount == 1
