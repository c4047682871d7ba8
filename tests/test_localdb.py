import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from chatconnect.localdb import LocalCluster


@pytest.fixture
def short_dir():
    # pytest's tmp_path can be too long for a unix socket path.
    path = Path(tempfile.mkdtemp(prefix="cc-localdb-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_cluster(short_dir):
    clusters = []

    def make(name="pg", throwaway=True, base=None):
        cluster = LocalCluster((base or short_dir) / name, throwaway=throwaway)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.destroy()


def scalar(url, query):
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(query).fetchone()[0]


def test_start_serves_on_a_unix_socket_only(make_cluster):
    cluster = make_cluster()
    assert cluster.start() is True
    assert cluster.is_running()
    assert scalar(cluster.url(), "SELECT 1") == 1
    assert scalar(cluster.url(), "SHOW listen_addresses") == ""
    assert scalar(cluster.url(), "SHOW fsync") == "off"
    assert cluster.url().startswith("postgresql://chatconnect@/postgres?host=/")


def test_create_database_is_idempotent(make_cluster):
    cluster = make_cluster()
    cluster.start()
    url = cluster.create_database("chatconnect_test")
    assert cluster.create_database("chatconnect_test") == url
    assert scalar(url, "SELECT current_database()") == "chatconnect_test"


def test_stop_refuses_connections_and_start_recovers(make_cluster):
    cluster = make_cluster()
    cluster.start()
    cluster.stop()
    assert not cluster.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url(), connect_timeout=2)
    cluster.start()
    assert scalar(cluster.url(), "SELECT 1") == 1


def test_restart_breaks_open_connections_and_accepts_new_ones(make_cluster):
    cluster = make_cluster()
    cluster.start()
    with psycopg.connect(cluster.url()) as conn:
        cluster.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert scalar(cluster.url(), "SELECT 1") == 1


def test_persistent_cluster_keeps_data_across_stop_and_start(make_cluster):
    cluster = make_cluster(throwaway=False)
    cluster.start()
    assert scalar(cluster.url(), "SHOW fsync") == "on"
    url = cluster.create_database("kept")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE note (body text)")
        conn.execute("INSERT INTO note VALUES ('still here')")
    cluster.stop()

    again = LocalCluster(cluster.data_dir)
    assert again.start() is True
    assert scalar(url, "SELECT body FROM note") == "still here"


def test_start_twice_reuses_the_running_server(make_cluster):
    cluster = make_cluster()
    assert cluster.start() is True
    assert cluster.start() is False
    other = LocalCluster(cluster.data_dir, throwaway=True)
    assert other.start() is False
    assert other.url() == cluster.url()
    assert scalar(other.url(), "SELECT 1") == 1


def test_stale_postmaster_pid_after_a_crash_does_not_block_start(make_cluster):
    cluster = make_cluster()
    cluster.start()
    pid_file = cluster.data_dir / "postmaster.pid"
    postmaster = int(pid_file.read_text().split("\n", 1)[0])
    os.kill(postmaster, signal.SIGKILL)
    # Its children notice the postmaster's death and exit.
    deadline = time.monotonic() + 10
    while processes_in(cluster.data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_file.exists()
    assert not cluster.is_running()
    assert cluster.start() is True
    assert scalar(cluster.url(), "SELECT 1") == 1


def test_postmaster_pid_naming_a_reused_pid_does_not_block_start(make_cluster):
    cluster = make_cluster()
    cluster.start()
    cluster.stop()
    # After a container restart the old PID may belong to an unrelated live process of
    # the server's user; postgres alone would then refuse to start.
    as_server_user = {"user": cluster.run_as.pw_uid} if cluster.run_as else {}
    unrelated = subprocess.Popen(["sleep", "60"], **as_server_user)
    try:
        (cluster.data_dir / "postmaster.pid").write_text(f"{unrelated.pid}\n{cluster.data_dir}\n")
        assert not cluster.is_running()
        assert cluster.start() is True
    finally:
        unrelated.kill()
        unrelated.wait()
    assert scalar(cluster.url(), "SELECT 1") == 1


def test_long_data_dir_path_gets_a_short_socket_dir(make_cluster, short_dir):
    base = short_dir / ("d" * 60) / ("e" * 60)
    cluster = make_cluster(base=base)
    cluster.start()
    assert str(cluster.socket_dir).startswith("/tmp/chatconnect-pg-")
    assert scalar(cluster.url(), "SELECT 1") == 1
    socket_dir = cluster.socket_dir
    cluster.destroy()
    assert not socket_dir.exists()


def test_destroy_stops_the_server_and_removes_the_data_dir(make_cluster):
    cluster = make_cluster()
    cluster.start()
    cluster.destroy()
    assert not cluster.data_dir.exists()
    assert not cluster.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url(), connect_timeout=2)


def processes_in(data_dir):
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if cwd.resolve(strict=True) == data_dir.resolve():
                found.append(cwd.parent.name)
        except OSError:
            continue
    return found
