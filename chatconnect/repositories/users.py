"""The users table."""

from dataclasses import dataclass
from datetime import datetime

from flask_login import UserMixin

INSERT_USER = """
INSERT INTO users (username, password) VALUES (%(username)s, %(password_hash)s)
RETURNING id, username, created_at"""

SELECT_USER_BY_ID = "SELECT id, username, created_at FROM users WHERE id = %(id)s"

SELECT_CREDENTIALS_BY_USERNAME = """
SELECT id, username, created_at, password AS password_hash
FROM users WHERE lower(username) = lower(%(username)s)"""

SELECT_PASSWORD_HASH = "SELECT password AS password_hash FROM users WHERE id = %(id)s"

UPDATE_PASSWORD = "UPDATE users SET password = %(password_hash)s WHERE id = %(id)s"

USERNAME_TAKEN = "SELECT 1 FROM users WHERE lower(username) = lower(%(username)s)"


@dataclass(frozen=True)
class User(UserMixin):
    id: str
    username: str
    created_at: datetime


def user_from_row(row) -> User:
    return User(id=row["id"], username=row["username"], created_at=row["created_at"])


class UserRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, username: str, password_hash: str) -> User:
        return user_from_row(self.conn.execute(
            INSERT_USER, {"username": username, "password_hash": password_hash}).fetchone())

    def get(self, user_id: str) -> User | None:
        row = self.conn.execute(SELECT_USER_BY_ID, {"id": user_id}).fetchone()
        return user_from_row(row) if row else None

    def username_taken(self, username: str) -> bool:
        return self.conn.execute(USERNAME_TAKEN, {"username": username}).fetchone() is not None

    def get_credentials(self, username: str):
        """(User, password hash) for a username matched case-insensitively, or None."""
        row = self.conn.execute(SELECT_CREDENTIALS_BY_USERNAME, {"username": username}).fetchone()
        return (user_from_row(row), row["password_hash"]) if row else None

    def get_password_hash(self, user_id: str) -> str | None:
        row = self.conn.execute(SELECT_PASSWORD_HASH, {"id": user_id}).fetchone()
        return row["password_hash"] if row else None

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.conn.execute(UPDATE_PASSWORD, {"id": user_id, "password_hash": password_hash})
