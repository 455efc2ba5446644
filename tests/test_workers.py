"""``imagegate serve --workers 2`` as a real process: a killed worker is replaced, SIGTERM
lets a request in flight finish, and /metrics sums what every worker counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegate.metrics import multiprocess_directory
from imagegate.workers import MAX_BACKOFF_SECONDS, MIN_BACKOFF_SECONDS, STABLE_SECONDS, backoff
from tests.support.gateway import Gateway, process_running
from tests.support.oci import (
    OCTET_STREAM,
    OciClient,
    raw_request,
    start_upload,
)
from tests.support.polling import until

MIB = 1024 * 1024
PASSWORD = "owner-Pa55word"
NOWHERE = "http://127.0.0.1:9"  # no test here pulls


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with Gateway(tmp_path, upstream_url=NOWHERE, workers=2) as gateway:
        until(lambda: len(gateway.worker_pids()) == 2, "two workers")
        yield gateway


def get(gateway: Gateway, path: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(f"{gateway.url}{path}", timeout=30) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read().decode()


def metrics(gateway: Gateway) -> dict[str, float]:
    status, content_type, text = get(gateway, "/metrics")
    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    samples = (line.split() for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


@pytest.mark.parametrize(
    ("previous", "lived", "wait"),
    [
        (0.0, 0.1, MIN_BACKOFF_SECONDS),  # died young: not at once
        (MIN_BACKOFF_SECONDS, 0.1, 2 * MIN_BACKOFF_SECONDS),  # again: twice as long
        (20.0, 0.1, MAX_BACKOFF_SECONDS),  # a crash loop waits at most this long
        (MAX_BACKOFF_SECONDS, STABLE_SECONDS, 0.0),  # it had served a while: at once
    ],
)
def test_a_worker_dying_young_again_and_again_is_replaced_ever_later(
    previous: float, lived: float, wait: float
) -> None:
    assert backoff(previous, lived) == wait


def test_a_killed_worker_is_replaced(gateway: Gateway) -> None:
    first, second = gateway.worker_pids()
    os.kill(first, signal.SIGKILL)
    until(
        lambda: len(pids := gateway.worker_pids()) == 2 and first not in pids,
        "a new worker in place of the killed one",
    )
    assert second in gateway.worker_pids()  # the other served on, untouched
    for _ in range(10):
        assert get(gateway, "/healthz")[0] == 200
    assert f"exited with status -{signal.SIGKILL}" in gateway.log_tail(20000)


def test_workers_stop_when_their_supervisor_is_killed(gateway: Gateway) -> None:
    workers = gateway.worker_pids()
    os.kill(gateway.pid, signal.SIGKILL)
    assert gateway.stop() == -signal.SIGKILL
    until(lambda: not any(process_running(pid) for pid in workers), "workers gone")


def test_sigterm_lets_a_request_in_flight_finish(gateway: Gateway) -> None:
    gateway.add_user("owner", PASSWORD)
    gateway.add_org("acme", owner="owner")
    client = OciClient(gateway.url, ("owner", PASSWORD))
    session = start_upload(client, "acme/app")
    data = os.urandom(4 * MIB)
    headers = {"Content-Type": OCTET_STREAM, "Content-Range": f"0-{len(data) - 1}"}
    with raw_request(client, "PATCH", session, headers, len(data)) as sock:
        sock.sendall(data[: len(data) // 2])
        os.kill(gateway.pid, signal.SIGTERM)
        # Still there, and still reading the request it has (nothing more: it stopped
        # accepting), while the client takes its time.
        until(lambda: "stopping 2 workers" in gateway.log_tail(20000), "the stop noticed")
        assert gateway.running
        sock.sendall(data[len(data) // 2 :])
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 202"), answer
    assert f"Range: 0-{len(data) - 1}".lower() in answer.lower()
    status = gateway.stop()
    assert Gateway.clean_exit(status), gateway.log_tail()


def test_metrics_are_summed_over_every_worker_even_dead_ones(gateway: Gateway) -> None:
    gateway.add_user("owner", PASSWORD)
    written = "imagegate_audit_events_written_total"
    before = metrics(gateway)[written]
    client = OciClient(gateway.url, ("owner", PASSWORD))
    for number in range(6):  # six sign-ins, six audit events, on whichever worker
        client.token((f"repository:owner/app{number}:pull",))
    until(lambda: metrics(gateway)[written] == before + 6, "six events written")
    # New workers in place of both: what they report now, they never counted themselves.
    old = gateway.worker_pids()
    for pid in old:
        os.kill(pid, signal.SIGTERM)
    until(
        lambda: len(pids := gateway.worker_pids()) == 2 and not set(pids) & set(old),
        "two new workers",
    )
    now = metrics(gateway)
    assert now[written] == before + 6
    assert now["imagegate_audit_events_buffered"] == 0  # only live workers' gauges count
    assert now["imagegate_audit_events_dropped_total"] == 0


def test_one_worker_stops_by_finishing_its_shutdown_not_by_its_signal(tmp_path: Path) -> None:
    # uvicorn raises the signal again after draining; left to the default handler, it
    # would kill the process before the audit recorder writes what it holds.
    with Gateway(tmp_path, upstream_url=NOWHERE, workers=1) as gateway:
        assert gateway.worker_pids() == []  # the gateway is this one process
        assert get(gateway, "/healthz")[0] == 200
        assert gateway.stop() == 0


SLOW_STARTUP = """
import os, socket, sys, time
from pathlib import Path
from imagegate.workers import Supervisor

def starting(sock):  # a worker still starting up: it never gets to serve
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(600)

Supervisor(starting, socket.socket(), 2).run()
"""


def test_a_worker_told_to_stop_while_starting_stops(tmp_path: Path) -> None:
    """The supervisor's own SIGTERM handler must not survive the fork: a worker that is
    still starting (no uvicorn handler yet) stops at once instead of carrying on until
    it is killed."""
    started = tmp_path / "started"
    started.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", SLOW_STARTUP, str(started)])
    try:
        until(lambda: len(list(started.iterdir())) == 2, "two workers starting")
        workers = [int(path.name) for path in started.iterdir()]
        parent.send_signal(signal.SIGTERM)
        until(lambda: parent.poll() is not None, "the supervisor exits")
        assert parent.returncode == 0
        assert not any(process_running(pid) for pid in workers)
    finally:
        parent.kill()
        parent.wait()


def test_two_gateways_on_one_data_directory_keep_their_own_metrics(tmp_path: Path) -> None:
    """Each supervisor counts in a directory of its own; one starting does not wipe
    another's that is still running, and what a dead one left is removed."""
    metrics = tmp_path / "metrics"
    alive = metrics / str(os.getppid())  # a running process: another gateway
    dead = metrics / "999999999"  # no such process: a killed gateway's leftovers
    for directory in (alive, dead):
        directory.mkdir(parents=True)
        (directory / "counter_1.db").write_bytes(b"x")
    with multiprocess_directory(metrics) as own:
        assert Path(own) == metrics / str(os.getpid())
        assert (alive / "counter_1.db").exists()
        assert not dead.exists()
    assert not Path(own).exists()
    assert (alive / "counter_1.db").exists()
