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

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.polling import until
from tests.support.process import ServerProcess

CLI_TIMEOUT_SECONDS = 60.0


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


class Gateway(ServerProcess):
    """One ``imagegate serve``; ``start``/``stop`` or use it as a context manager.

    It runs ``workers`` worker processes (``IMAGEGATE_WORKERS``), by default
    ``default_workers``: one (the whole gateway in one process) unless a suite sets more,
    as the end-to-end suite does.
    """

    name = "imagegate serve"
    ready_path = "/healthz"
    default_workers = 1

    def __init__(
        self,
        directory: Path,
        *,
        upstream_url: str,
        hub_api_url: str = "",
        upstream_credentials: tuple[str, str] | None = None,
        database_url: str = "",
        settings: Mapping[str, str] | None = None,
        workers: int | None = None,
    ) -> None:
        super().__init__(directory, "gateway.log")
        self.workers = workers or self.default_workers
        # More IMAGEGATE_* settings (e.g. IMAGEGATE_AUDIT_WEBHOOK_URLS) for this gateway.
        self.settings = dict(settings or {})
        self.data_dir = directory / "gateway-data"
        self.upstream_url = upstream_url
        self.hub_api_url = hub_api_url
        self.upstream_credentials = upstream_credentials
        self.database_url = database_url

    def environment(self) -> dict[str, str]:
        """The caller's environment without its ``IMAGEGATE_*``, plus this gateway's settings."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGEGATE_")}
        env.update(
            {
                "IMAGEGATE_DATA_DIR": str(self.data_dir),
                "IMAGEGATE_UPSTREAM_URL": self.upstream_url,
                "IMAGEGATE_PUBLIC_URL": self.url,
                "IMAGEGATE_HUB_API_URL": self.hub_api_url,
                "IMAGEGATE_WORKERS": str(self.workers),
            }
        )
        if self.database_url:
            env["IMAGEGATE_DATABASE_URL"] = self.database_url
        if self.upstream_credentials is not None:
            env["IMAGEGATE_UPSTREAM_USERNAME"] = self.upstream_credentials[0]
            env["IMAGEGATE_UPSTREAM_PASSWORD"] = self.upstream_credentials[1]
        env.update(self.settings)
        return env

    def prepare(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # as imagegate makes it

    def command(self) -> list[str]:
        return [imagegate_binary(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def worker_pids(self) -> list[int]:
        """The worker processes serving now; none with one worker (then it is one process)."""
        if self.workers == 1:
            return []
        return [int(pid) for pid in self._children()]

    def _children(self) -> list[str]:
        return Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()

    def kill(self) -> int | None:
        """A crash: SIGKILL to every process of the gateway at once; its exit status."""
        children = self._children()
        os.kill(self.pid, signal.SIGKILL)
        for pid in map(int, children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        status = self.stop()
        # Gone, and the listening socket with them.
        until(lambda: not any(process_running(int(pid)) for pid in children), "every process gone")
        return status

    def restart(self) -> Gateway:
        status = self.stop()
        if not self.clean_exit(status):
            raise RuntimeError(f"imagegate serve exited with {status}:\n{self.log_tail()}")
        return self.start()

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


def process_running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped no longer holds anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


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
