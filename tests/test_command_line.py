"""The `chatconnect` console script (`make cli`): help without a database, the `make run`
database by default, one line when the database cannot be reached."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from chatconnect.localdb import LocalCluster

from .conftest import PASSWORD

CHATCONNECT = str(Path(sys.executable).with_name("chatconnect"))
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing"


def run(args, cwd, **env):
    """The console script with none of the settings of the environment the tests run in."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "CHATCONNECT_ENV", "SECRET_KEY")}
    return subprocess.run([CHATCONNECT, *args], cwd=cwd, env={**base, **env}, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["users", "create", "--help"], ["db", "--help"]])
def test_help_needs_no_database(tmp_path, args):
    result = run(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: chatconnect")
    assert not (tmp_path / "instance").exists()


def test_without_database_url_outside_the_project_it_says_so_in_one_line(tmp_path):
    result = run(["sessions", "purge"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "instance").exists()


@pytest.mark.parametrize("args", [["sessions", "purge"], ["users", "create", "--username", "alice",
                                                           "--password", PASSWORD]])
def test_an_unreachable_database_is_one_line(tmp_path, args):
    result = run(args, tmp_path, DATABASE_URL=UNREACHABLE, SECRET_KEY="s")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: cannot reach the database: ")


def test_an_unreachable_database_under_flask_is_an_error_not_a_traceback(make_app):
    app = make_app(DATABASE_URL=UNREACHABLE, DB_POOL_TIMEOUT="1")
    result = app.test_cli_runner().invoke(args=["sessions", "purge"])
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
    assert "Traceback" not in result.output


def test_without_database_url_it_uses_the_make_run_cluster():
    # Not under pytest's tmp_path: pytest takes the other users' access to it away when a
    # session starts, and the cluster may run as the `postgres` user.
    tmp_path = Path(tempfile.mkdtemp(prefix="ccpg-"))
    (tmp_path / "wsgi.py").touch()  # the project directory, where `make run` keeps instance/
    cluster = LocalCluster(tmp_path / "instance" / "postgres")
    try:
        created = run(["users", "create", "--username", "alice", "--password", PASSWORD], tmp_path)
        assert created.returncode == 0, created.stderr
        assert created.stdout.startswith("created user alice")
        assert created.stderr.splitlines() == ["Starting PostgreSQL in instance/postgres (unix socket only)",
                                               "Stopping PostgreSQL in instance/postgres"]
        assert not cluster.is_running()

        # Running already (as under `make run`): used, and left running.
        cluster.start()
        taken = run(["users", "create", "--username", "ALICE", "--password", PASSWORD], tmp_path)
        assert taken.returncode == 1
        assert taken.stderr.splitlines() == ["Using the PostgreSQL server already running in instance/postgres",
                                             "Error: the username 'ALICE' is taken"]
        assert cluster.is_running()
    finally:
        cluster.destroy()
        shutil.rmtree(tmp_path, ignore_errors=True)
