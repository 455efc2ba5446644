"""``imagegate serve`` as a real subprocess, and its admin CLI against the same database.

::

    with Gateway(tmp_path, upstream_url=upstream.url, hub_api_url=hub.url) as gateway:
        gateway.cli("user", "add", "alice", "--password-stdin", stdin="secret\\n")
        ...  # pull from gateway.host

The gateway listens on a free 127.0.0.1 port, keeps its data (SQLite, cache, keys) in a
directory of its own, and writes everything it prints to ``gateway.log`` so a failing test
can show what the server said. Only ``IMAGEGATE_*`` settings the product knows are set;
any such variable inherited from the caller's environment is dropped (an unknown one
would stop startup).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CLI_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def imagegate_binary() -> str:
    """The ``imagegate`` console script of the interpreter running the tests, else PATH's."""
    beside = Path(sys.executable).parent / "imagegate"
    if beside.exists():
        return str(beside)
    found = shutil.which("imagegate")
    if found is None:
        raise RuntimeError("the imagegate console script is not installed (pip install -e .)")
    return found


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ imagegate {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


class Gateway:
    """One ``imagegate serve`` process; ``start``/``stop`` or use it as a context manager."""

    def __init__(
        self,
        directory: Path,
        *,
        upstream_url: str,
        hub_api_url: str = "",
        upstream_credentials: tuple[str, str] | None = None,
        database_url: str = "",
    ) -> None:
        self.directory = directory
        self.data_dir = directory / "gateway-data"
        self.log_path = directory / "gateway.log"
        self.upstream_url = upstream_url
        self.hub_api_url = hub_api_url
        self.upstream_credentials = upstream_credentials
        self.database_url = database_url
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

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

    def environment(self) -> dict[str, str]:
        """The caller's environment without its ``IMAGEGATE_*``, plus this gateway's settings."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGEGATE_")}
        env.update(
            {
                "IMAGEGATE_DATA_DIR": str(self.data_dir),
                "IMAGEGATE_UPSTREAM_URL": self.upstream_url,
                "IMAGEGATE_PUBLIC_URL": self.url,
                "IMAGEGATE_HUB_API_URL": self.hub_api_url,
            }
        )
        if self.database_url:
            env["IMAGEGATE_DATABASE_URL"] = self.database_url
        if self.upstream_credentials is not None:
            env["IMAGEGATE_UPSTREAM_USERNAME"] = self.upstream_credentials[0]
            env["IMAGEGATE_UPSTREAM_PASSWORD"] = self.upstream_credentials[1]
        return env

    # -- the server -------------------------------------------------------------------

    def start(self) -> Gateway:
        """Start ``imagegate serve`` and wait until ``/healthz`` answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [imagegate_binary(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=self.directory,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                last_error = f"exited with status {self._process.returncode}"
                break
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"/healthz answered {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"/healthz answered {exc.code}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"imagegate serve did not become healthy on {self.url} ({last_error}); "
            f"its log:\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """Ask the server to stop (SIGTERM), wait, and kill it if it does not.

        Returns its exit status (``None`` if it was not running): 0 or ``-SIGTERM`` for a
        clean shutdown (uvicorn re-raises the signal it handled), ``-SIGKILL`` if it had to
        be killed.
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

    def restart(self) -> Gateway:
        status = self.stop()
        if not self.clean_exit(status):
            raise RuntimeError(f"imagegate serve exited with {status}:\n{self.log_tail()}")
        return self.start()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- its log ----------------------------------------------------------------------

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
        text = self.log_since(0)
        return text[-limit:]

    # -- the admin CLI ----------------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> CliResult:
        """Run ``imagegate ARGS`` with this gateway's settings; by default, insist it succeeds."""
        completed = subprocess.run(
            [imagegate_binary(), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.environment(),
            cwd=self.directory,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        result = CliResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"admin command failed:\n{result.describe()}")
        return result

    def add_user(self, name: str, password: str, email: str | None = None) -> None:
        email_args = ("--email", email) if email else ()
        self.cli("user", "add", name, *email_args, "--password-stdin", stdin=password + "\n")

    def create_token(self, user: str, description: str = "e2e") -> str:
        """Create a personal access token for ``user`` and return it (printed once)."""
        result = self.cli("token", "create", user, "--description", description)
        return parse_token(result.stdout)

    def add_org(self, org: str, owner: str) -> None:
        self.cli("org", "add", org, "--owner", owner)

    def add_member(self, org: str, user: str, team: str | None = None) -> None:
        team_args = ("--team", team) if team else ()
        self.cli("org", "member", "add", org, user, *team_args)

    def remove_member(self, org: str, user: str) -> None:
        self.cli("org", "member", "remove", org, user)

    def set_image_access(self, org: str, *flags: str) -> None:
        """``imagegate image-access set ORG FLAGS`` (``--enable``, ``--community allowed``...)."""
        self.cli("image-access", "set", org, *flags)

    def set_publisher(self, namespace: str, status: str) -> None:
        self.cli("publisher", "set", namespace, status)


def parse_token(stdout: str) -> str:
    """The token from ``imagegate token create``'s output.

    The token is the longest whitespace-free word of the output; a command that also
    prints a sentence around it still yields the token itself.
    """
    words = [word.strip("\"'`") for word in stdout.split()]
    candidates = [word for word in words if len(word) >= 20]
    if not candidates:
        raise AssertionError(f"no token in `imagegate token create` output: {stdout!r}")
    return max(candidates, key=len)
