"""Worker processes: one listening socket, N processes serving it, each replaced if it dies.

``imagegate serve --workers N`` binds the socket once in the parent, after the parent has
done the one-time startup work (data directory, database migrations, signing key) that N
processes would otherwise race on, and then starts N workers that accept on the shared
socket. The parent serves nothing itself; it only watches:

- A worker that exits while the gateway is not stopping is started again, after a
  backoff that doubles with each quick death (``MIN_BACKOFF_SECONDS`` up to
  ``MAX_BACKOFF_SECONDS``), so a worker that crashes at startup does not spin a core.
- ``SIGTERM`` or ``SIGINT`` to the parent is passed on as ``SIGTERM`` to every worker,
  which stops accepting and finishes the requests it has (uvicorn's graceful shutdown,
  bounded by ``GRACEFUL_SHUTDOWN_SECONDS``); the parent exits when all have. A worker
  still there ``KILL_AFTER_SECONDS`` later is killed.

Workers are *forked* once that work is done: by then the parent's event loop is closed
and its threads have ended (``Supervisor.run`` checks that no other thread runs), so
nothing is copied mid-state, and a worker starts at once, sharing the parent's imported
code (copy-on-write) instead of importing it all again. A worker keeps the socket and the
settings and builds everything else itself (``bootstrap.serve_on``).
Workers run in a process group of their own, so a Ctrl-C in a terminal reaches only the
parent (which drains them) rather than every process at once (which uvicorn takes as a
second Ctrl-C: quit without draining); a worker whose parent is gone stops by itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType

from imagegate.audit.recorder import CLOSE_TIMEOUT_SECONDS

logger = logging.getLogger("imagegate.workers")

MIN_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
# A worker that lived this long was not crash-looping: its replacement starts at once.
STABLE_SECONDS = 30.0
# How long a worker may take to finish its requests once told to stop.
GRACEFUL_SHUTDOWN_SECONDS = 30
# Then the audit recorder writes what it holds, retrying for up to its close timeout;
# only a worker still there after both (and a margin) is killed.
KILL_AFTER_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + CLOSE_TIMEOUT_SECONDS + 10.0
_POLL_SECONDS = 0.25


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def backoff(previous: float, lived: float) -> float:
    """How long to wait before replacing a worker that exited after ``lived`` seconds,
    when its predecessor's replacement waited ``previous``."""
    if lived >= STABLE_SECONDS:
        return 0.0
    return min(max(previous * 2, MIN_BACKOFF_SECONDS), MAX_BACKOFF_SECONDS)


Target = Callable[[socket.socket], None]


@dataclass
class _Slot:
    """One of the N workers: the process in it now, and when the next may start."""

    number: int
    process: BaseProcess | None = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float = 0.0


@dataclass
class Supervisor:
    """Runs ``target(sock)`` in ``count`` forked processes until told to stop.

    ``on_exit(pid)`` runs for each worker that has exited (the metrics' bookkeeping).
    """

    target: Target
    sock: socket.socket
    count: int
    on_exit: Callable[[int], None] = lambda pid: None
    _slots: list[_Slot] = field(default_factory=list)
    _stopping: bool = False

    def run(self) -> None:
        """Serve until ``SIGTERM`` or ``SIGINT``; returns once every worker has exited."""
        if threading.active_count() > 1:  # a fork would copy its locks, held or not
            raise RuntimeError(f"cannot fork workers: threads run: {threading.enumerate()}")
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._slots = [_Slot(number) for number in range(self.count)]
            for slot in self._slots:
                self._start(slot)
            while not self._stopping:
                self._watch()
            self._drain()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            logger.info("stopping %d workers (signal %d)", self.count, signum)
        self._stopping = True
        for process in self._live():
            _signal(process, signal.SIGTERM)

    def _live(self) -> list[BaseProcess]:
        return [slot.process for slot in self._slots if slot.process is not None]

    def _start(self, slot: _Slot) -> None:
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_worker,
            args=(self.target, self.sock),
            name=f"imagegate-worker-{slot.number}",
        )
        process.start()
        slot.process, slot.started = process, time.monotonic()
        logger.info("worker %d started", slot.number, extra={"pid": process.pid})

    def _watch(self) -> None:
        sentinels = [process.sentinel for process in self._live()]
        multiprocessing.connection.wait(sentinels, timeout=_POLL_SECONDS)
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is not None and not process.is_alive():
                pid, status = self._reap(slot, process)
                if self._stopping:
                    continue
                lived = now - slot.started
                slot.backoff = backoff(slot.backoff, lived)
                slot.restart_at = now + slot.backoff
                logger.warning(
                    "worker %d exited with status %s after %.1f s; starting another in %.1f s",
                    slot.number,
                    status,
                    lived,
                    slot.backoff,
                    extra={"pid": pid, "exit_status": status},
                )
            if slot.process is None and not self._stopping and now >= slot.restart_at:
                self._start(slot)

    def _reap(self, slot: _Slot, process: BaseProcess) -> tuple[int | None, int | None]:
        """Forget an exited worker; its pid and exit status."""
        process.join()
        pid, status = process.pid, process.exitcode
        slot.process = None
        if pid is not None:
            self.on_exit(pid)
        process.close()
        return pid, status

    def _drain(self) -> None:
        self.sock.close()  # new connections are refused, not left waiting for no one
        for live in self._live():  # again: one may have started as the signal came
            _signal(live, signal.SIGTERM)
        deadline = time.monotonic() + KILL_AFTER_SECONDS
        for slot in self._slots:
            process = slot.process
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.error("worker %d did not stop in time: killed", slot.number)
                process.kill()
                process.join()
            self._reap(slot, process)


def _signal(process: BaseProcess, signum: int) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):  # exited: reaped by the next watch
            os.kill(process.pid, signum)


def _worker(target: Target, sock: socket.socket) -> None:
    """A worker process: a process group of its own, then ``target`` (which serves)."""
    os.setpgid(0, 0)
    # The supervisor's handlers came with the fork. Until uvicorn installs its own (once
    # the worker serves), a stop must simply end the worker: it has nothing to drain yet.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    target(sock)
