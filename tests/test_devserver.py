"""`make run` in a terminal: Ctrl-C stops it at once, every time, and a bad setting is one line."""

import fcntl
import os
import pty
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).parents[1]
READY_LINE = "Press Ctrl-C to stop."
STOP_BOUND_SECONDS = 5  # only a bound on a hang: a clean stop takes about a second


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def devserver_env(database_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEST_DATABASE_URL", "CHATCONNECT_ENV", "SECRET_KEY", "MAKEFLAGS", "MAKELEVEL")}
    # The interpreter running the tests, so that `make` neither builds nor uses another venv.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "DATABASE_URL": database_url, "PORT": str(free_port()), "GUNICORN_WORKERS": "2",
            **extra}


class Terminal:
    """`make run` on a pseudo-terminal of its own, as a user types it in a shell."""

    def __init__(self, env: dict):
        self.master, slave = pty.openpty()
        self.output = bytearray()
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run", "INSTALLED=", f"PY={sys.executable}"],
            cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the terminal closed: everyone on it exited
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, line: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.text:
            assert self.process.poll() is None, f"make run exited early:\n{self.text}"
            assert time.monotonic() < deadline, f"no {line!r} within {timeout} s:\n{self.text}"
            time.sleep(0.05)

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal turns it into SIGINT to its foreground group

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.reader.join(5)
        os.close(self.master)


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process on the machine."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
    return table


def sessions_under(pid: int) -> set[int]:
    """The session ids of `pid` and of all its descendants."""
    table = processes()
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += [child for child, (parent, _) in table.items() if parent == current]
    return {table[p][1] for p in found if p in table}


@pytest.mark.parametrize("cycles, when", [
    (10, READY_LINE),
    # before the workers have loaded the app, or even installed their signal handlers
    (3, '"message": "Booting worker with pid: '),
])
def test_ctrl_c_stops_make_run_at_once_every_time(database_url, cycles, when):
    for cycle in range(cycles):
        terminal = Terminal(devserver_env(database_url))
        try:
            terminal.wait_for(when)
            sessions = sessions_under(terminal.process.pid)
            # make with the dev server; gunicorn, and the webhook worker, each in a session of its own
            assert len(sessions) == 3, sessions
            terminal.ctrl_c()
            try:
                returncode = terminal.process.wait(STOP_BOUND_SECONDS)
            except subprocess.TimeoutExpired:
                pytest.fail(f"cycle {cycle}: still running {STOP_BOUND_SECONDS} s after Ctrl-C:\n"
                            f"{terminal.text}")
            terminal.reader.join(5)
            assert returncode == 0, terminal.text
            for unwanted in ("Interrupt", "SIGKILL", "Traceback", "error:", '"level": "ERROR"',
                             '"level": "WARNING"', '"level": "CRITICAL"'):
                assert unwanted not in terminal.text, f"cycle {cycle}:\n{terminal.text}"
            # One signal reached gunicorn, and it stopped by itself.
            assert terminal.text.count('"message": "Handling signal: ') == 1, terminal.text
            assert '"message": "Shutting down: Master"' in terminal.text
            left = {pid for pid, (_, sid) in processes().items() if sid in sessions}
            assert left == set(), f"cycle {cycle}: still running: {left}"
        finally:
            terminal.close()


def test_a_bad_setting_stops_make_run_with_one_line(database_url):
    env = devserver_env(database_url, LOG_LEVEL="TRACE")
    result = subprocess.run([sys.executable, "-m", "chatconnect.devserver"], cwd=ROOT, env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 1
    assert result.stderr == ("error: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, "
                             "got 'TRACE'\n")


def test_make_run_is_development_mode_with_a_database_url_too(database_url):
    env = devserver_env(database_url)  # no SECRET_KEY, no CHATCONNECT_ENV
    terminal = Terminal(env)
    try:
        terminal.wait_for(READY_LINE)
        # Sign-ins refused earlier in this test run, from this address, must not count here.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM rate_limits")
        import urllib.request
        port = env["PORT"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/auth/login", method="POST",
            data=b'{"username": "nobody", "password": "wrong password"}',
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401
        terminal.ctrl_c()
        assert terminal.process.wait(STOP_BOUND_SECONDS) == 0
        assert re.search(r"Schema: (up to date|applied)", terminal.text)
    finally:
        terminal.close()
