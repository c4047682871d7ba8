"""`sessions purge` and `users create` on the command line."""

import pytest

from .accounts import PASSWORD, register, signed_in_client, sql, unique_username
from .conftest import AuthActions


def test_users_create_with_flags(app, runner):
    username = unique_username()
    result = runner.invoke(args=["users", "create", "--username", username, "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert f"created user {username}" in result.output
    assert AuthActions(app.test_client()).login(username).status_code == 200


def test_users_create_prompts_for_what_is_missing_and_hides_the_password(app, runner):
    username = unique_username()
    typed = f"{username}\n{PASSWORD}\nanother one\n{PASSWORD}\n{PASSWORD}\n"
    result = runner.invoke(args=["users", "create"], input=typed)
    assert result.exit_code == 0, result.output
    assert "Username:" in result.output and "Repeat for confirmation:" in result.output
    assert "do not match" in result.output
    assert PASSWORD not in result.output
    assert AuthActions(app.test_client()).login(username).status_code == 200


def test_users_create_prompts_only_for_the_password(app, runner):
    username = unique_username()
    result = runner.invoke(args=["users", "create", "--username", username],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Username:" not in result.output


def test_users_create_refuses_a_taken_name_in_any_case(app, runner, database_url):
    username, _ = register(app)
    result = runner.invoke(args=["users", "create", "--username", username.upper(),
                                 "--password", PASSWORD])
    assert result.exit_code == 1
    assert f"the username '{username.upper()}' is taken" in result.output
    assert sql(database_url, "SELECT count(*) FROM users") == [(1,)]


@pytest.mark.parametrize("username, password, message", [
    ("ab", PASSWORD, "username must be at least 3 characters"),
    ("bad name", PASSWORD, "username may contain only letters"),
    ("x" * 65, PASSWORD, "username must be at most 64 characters"),
    ("good-name", "short", "password must be at least 8 characters"),
])
def test_users_create_applies_the_sign_up_rules(app, runner, database_url, username, password,
                                                 message):
    result = runner.invoke(args=["users", "create", "--username", username,
                                 "--password", password])
    assert result.exit_code == 1
    assert message in result.output
    assert sql(database_url, "SELECT count(*) FROM users") == [(0,)]


def test_sessions_purge_deletes_expired_sessions_only(app, runner, database_url):
    username, live = register(app, user_agent="Live/1.0")
    signed_in_client(app, username, user_agent="Expired/1.0")
    signed_in_client(app, username, user_agent="AlsoExpired/1.0")
    sql(database_url, "UPDATE session SET expire = now() AT TIME ZONE 'UTC' - interval '1 minute'"
                      " WHERE user_agent LIKE '%%Expired/1.0'")
    # A session row left by the original application: no user, a plain id; never usable.
    sql(database_url, "INSERT INTO session (sid, sess, expire) VALUES"
                      " ('legacy', '{}', now() + interval '1 day')")
    result = runner.invoke(args=["sessions", "purge"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 3 expired sessions"
    assert sql(database_url, "SELECT user_agent FROM session") == [("Live/1.0",)]
    assert live.get("/api/auth/me").status_code == 200
    assert runner.invoke(args=["sessions", "purge"]).output.strip() == "deleted 0 expired sessions"
