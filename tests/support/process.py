"""A server the tests run as a real subprocess: start it, wait until it answers, stop it.

Subclasses say how to launch (``command``, ``environment``) and what "ready" means
(``ready_path`` answering one of ``ready_statuses``); output goes to ``log_path``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

STOP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoggedProcess:
    """A subprocess the tests start and stop; what it prints goes to ``log_path``."""

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> int | None:
        raise NotImplementedError

    def log_size(self) -> int:
        """Where the log ends now; pass it to ``log_since`` to see what came after."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self, limit: int = 8000) -> str:
        return self.log_since(0)[-limit:]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess(LoggedProcess):
    name = "server"
    ready_path = "/"
    ready_statuses: frozenset[int] = frozenset({200})
    start_timeout_seconds = 30.0

    def __init__(self, directory: Path, log_name: str) -> None:
        self.directory = directory
        self._log_path = directory / log_name
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def host(self) -> str:
        """``host:port`` as image references write it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None  # inherit the caller's

    def prepare(self) -> None:
        """Create what the server needs on disk before each start."""

    def start(self) -> Self:
        """Start the server and wait until it answers (restartable after ``stop``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=self.directory,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_seconds
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                last_error = f"exited with status {self._process.returncode}"
                break
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                last_error = str(exc)
                time.sleep(0.05)
                continue
            if status in self.ready_statuses:
                return
            last_error = f"{self.ready_path} answered {status}"
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not become ready on {self.url} ({last_error}); "
            f"its log:\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """SIGTERM, wait, and kill if it will not stop; returns its exit status.

        ``None`` if it was not running; 0 or ``-SIGTERM`` for a clean shutdown,
        ``-SIGKILL`` if it had to be killed.
        """
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    @staticmethod
    def clean_exit(status: int | None) -> bool:
        return status in (None, 0, -signal.SIGTERM)
