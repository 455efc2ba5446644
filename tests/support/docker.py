"""A private Docker engine (``dockerd`` from Debian's ``docker.io``) and its CLI, as root.

::

    with DockerEngine() as engine:
        docker = engine.client(tmp_path / "bob")  # a DOCKER_CONFIG of its own
        docker.login(gateway.host, "bob", "secret")
        pulled = docker.pull(f"{gateway.host}/library/alpine:3")

The daemon keeps everything in a short directory of its own (data root, exec root with
its containerd, pid file, API socket, log): it never touches the host's
``/var/lib/docker`` or ``/var/run/docker.sock``, reads an empty daemon config instead of
``/etc/docker/daemon.json``, makes no iptables rules and no bridge, uses vfs storage (no
overlay mounts) and treats ``127.0.0.0/8`` as plain-HTTP registries. (dockerd 20.10 still
keeps its identity key in ``/etc/docker/key.json``; there is no flag to move it.)

``stop`` ends only the daemon this object started (and, should it die without stopping
its containerd, that containerd, found by its pid file under this daemon's exec root),
then removes the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from tests.support.clients import ClientResult, require
from tests.support.process import LoggedProcess

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 120.0


class DockerEngine(LoggedProcess):
    """One ``dockerd``; ``start``/``stop`` or use it as a context manager."""

    name = "dockerd"

    def __init__(self) -> None:
        self.dockerd = require("dockerd")
        self.docker = require("docker")
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- where things are (the directory is made by ``start``) ----------------------------

    def _path(self, name: str) -> Path:
        if self.directory is None:
            raise RuntimeError("dockerd is not started")
        return self.directory / name

    @property
    def socket(self) -> Path:
        return self._path("sock")

    @property
    def log_path(self) -> Path:
        return self._path("dockerd.log")

    @property
    def host(self) -> str:
        """What ``docker -H`` takes."""
        return f"unix://{self.socket}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            self.dockerd,
            "--config-file",
            str(self._path("daemon.json")),
            "--data-root",
            str(self._path("root")),
            "--exec-root",
            str(self._path("exec")),
            "--pidfile",
            str(self._path("pid")),
            "-H",
            self.host,
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver",
            "vfs",
            "--insecure-registry",
            "127.0.0.0/8",
        ]

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the daemon and wait until ``docker info`` answers."""
        if self.running:
            raise RuntimeError("dockerd is already running")
        if os.geteuid() != 0:
            raise RuntimeError("dockerd runs as root in these tests")
        # Short: containerd's sockets live under the exec root, and a unix socket path
        # may not exceed 107 bytes (pytest's temporary paths are long).
        self.directory = Path(tempfile.mkdtemp(prefix="igdk-"))
        self._path("daemon.json").write_text("{}\n")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_daemon_environment(),
                cwd=self.directory,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                last = f"exited with status {self._process.returncode}"
                break
            if self.socket.exists():
                info = self.cli("info", "--format", "{{.ServerVersion}}", timeout=10)
                if info.returncode == 0 and info.stdout.strip():
                    return
                last = (info.stderr or info.stdout).strip()
            time.sleep(0.1)
        raise RuntimeError(f"dockerd did not become ready ({last}); its log:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, wait, kill if it will not stop; then remove everything it kept.

        Returns its exit status: ``None`` if it was not running, 0 for a clean shutdown.
        """
        process, self._process = self._process, None
        status: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            status = process.returncode
        if self.directory is not None:
            self._stop_orphaned_containerd()
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        return status

    def _stop_orphaned_containerd(self) -> None:
        """dockerd stops the containerd it started; if it died first, stop that one."""
        exec_root = self._path("exec")
        pid_file = exec_root / "containerd" / "containerd.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if str(exec_root) not in cmdline:  # the pid was reused by something else
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    def clean_exit(status: int | None) -> bool:
        return status in (None, 0)

    # -- the CLI ----------------------------------------------------------------------------

    def cli(
        self,
        *args: str,
        config: Path | None = None,
        stdin: str = "",
        timeout: float = CLI_TIMEOUT_SECONDS,
    ) -> ClientResult:
        """``docker -H SOCK ARGS`` with ``config`` as DOCKER_CONFIG (default: a private one)."""
        command = [self.docker, "-H", self.host, *args]
        env = _client_environment(config or self._path("cfg"))
        completed = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        return ClientResult(
            tuple(command), completed.returncode, completed.stdout, completed.stderr
        )

    def client(self, config: Path) -> DockerClient:
        """A docker user: the CLI with a DOCKER_CONFIG (credentials) of its own."""
        config.mkdir(parents=True, exist_ok=True)
        return DockerClient(self, config)


class DockerClient:
    """What one person at a terminal runs: ``docker login`` / ``pull`` / ``rmi``."""

    def __init__(self, engine: DockerEngine, config: Path) -> None:
        self.engine = engine
        self.config = config

    def run(self, *args: str, stdin: str = "") -> ClientResult:
        return self.engine.cli(*args, config=self.config, stdin=stdin)

    def login(self, registry: str, user: str, password: str) -> ClientResult:
        return self.run(
            "login", registry, "--username", user, "--password-stdin", stdin=password + "\n"
        )

    def logout(self, registry: str) -> ClientResult:
        return self.run("logout", registry)

    def pull(self, reference: str) -> ClientResult:
        """``docker pull REFERENCE``; after a success, the digest the daemon recorded."""
        result = self.run("pull", reference)
        if not result.ok:
            return result
        return ClientResult(
            result.args, result.returncode, result.stdout, result.stderr, self.digest(reference)
        )

    def inspect(self, reference: str) -> dict[str, object]:
        result = self.run("image", "inspect", reference)
        if not result.ok:
            raise AssertionError(f"docker image inspect failed:\n{result.describe()}")
        found: list[dict[str, object]] = json.loads(result.stdout)
        return found[0]

    def digest(self, reference: str) -> str:
        """The manifest digest of the image pulled as ``REFERENCE`` (its RepoDigests entry)."""
        repository = reference.rsplit("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        repo_digests = self.inspect(reference).get("RepoDigests") or []
        assert isinstance(repo_digests, list)
        for entry in repo_digests:
            name, _, digest = str(entry).partition("@")
            if name == repository:
                return digest
        raise AssertionError(f"no digest of {repository} in RepoDigests {repo_digests}")

    def image_id(self, reference: str) -> str:
        return str(self.inspect(reference)["Id"])

    def remove(self, reference: str) -> None:
        """Forget a pulled image (if present), so the next pull fetches it again."""
        self.run("image", "rm", "--force", reference)


def _daemon_environment() -> dict[str, str]:
    """PATH (containerd, runc) and locale; nothing that would point dockerd elsewhere."""
    return {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "TZ")}


def _client_environment(config: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "TZ")}
    env["HOME"] = str(config)
    env["DOCKER_CONFIG"] = str(config)
    return env
