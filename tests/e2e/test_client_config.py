"""``imagegate client-config`` output, used as is by real clients: podman (registries.conf)
and containerd's ctr (hosts.toml) pull ``docker.io/library/<name>`` and the pull arrives at
the gateway.

Docker Hub is unreachable from the test machines, so a successful pull of a docker.io
name already proves the mirror was used; the gateway's request log shows it too, with the
client's own user agent.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.binaries import require_binary
from tests.support.clients import Podman
from tests.support.gateway import Gateway
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

REPOSITORY = "library/igclientconfig"  # an official image's name on Docker Hub
TAG = "1"
HUB_REFERENCE = f"docker.io/{REPOSITORY}:{TAG}"
COMMAND_TIMEOUT_SECONDS = 120.0
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@pytest.fixture(scope="module")
def digest(upstream: UpstreamRegistry) -> str:
    # This machine's architecture: containerd refuses an image for another platform.
    architecture = _ARCHITECTURES.get(platform.machine().lower(), "amd64")
    image = build_image("client-config", architecture=architecture)
    return push_image(upstream.url, REPOSITORY, TAG, image)


@pytest.fixture(scope="module")
def gateway(
    start_gateway: Callable[..., Gateway], upstream: UpstreamRegistry, digest: str
) -> Gateway:
    return start_gateway(upstream_url=upstream.url)


def client_config(gateway: Gateway, kind: str) -> str:
    return gateway.cli("client-config", "--for", kind, "--server", gateway.url).stdout


def requests_since(gateway: Gateway, offset: int) -> list[dict[str, Any]]:
    """The gateway's request log lines written after ``offset``."""
    entries = []
    for line in gateway.log_since(offset).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "request":
            entries.append(entry)
    return entries


def assert_pulled_through(gateway: Gateway, offset: int, user_agent: str) -> None:
    """The manifest and a blob of ``REPOSITORY`` were served to a ``user_agent`` client."""
    served = [
        (entry["method"], entry["path"])
        for entry in requests_since(gateway, offset)
        if entry["status"] == 200 and user_agent in entry.get("user_agent", "")
    ]
    manifests = [path for _, path in served if path == f"/v2/{REPOSITORY}/manifests/{TAG}"]
    blobs = [path for method, path in served if path.startswith(f"/v2/{REPOSITORY}/blobs/")]
    assert manifests and blobs, f"no pull of {REPOSITORY} by {user_agent!r} in {served}"


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def describe(completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"$ {' '.join(completed.args)}\nexit {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    )


# -- podman -----------------------------------------------------------------------------


def test_podman_pulls_docker_hub_names_through_the_gateway(
    gateway: Gateway, digest: str, podman: Podman, tmp_path: Path
) -> None:
    registries = tmp_path / "imagegate.conf"
    registries.write_text(client_config(gateway, "podman"))
    offset = gateway.log_size()
    # No --tls-verify=false: the configuration's `insecure = true` is what allows http.
    pulled = run(
        [
            podman.binary,
            "--root",
            str(podman.root),
            "--runroot",
            str(podman.runroot),
            "--storage-driver",
            "vfs",
            "pull",
            "--signature-policy",
            str(podman.policy),
            HUB_REFERENCE,
        ],
        env={**podman.env, "CONTAINERS_REGISTRIES_CONF": str(registries)},
    )
    assert pulled.returncode == 0, describe(pulled)
    assert podman.image_digest(HUB_REFERENCE) == digest
    assert_pulled_through(gateway, offset, "containers/")


# -- containerd -------------------------------------------------------------------------

_CONTAINERD_CONFIG = """\
version = 2
root = "{directory}/root"
state = "{directory}/state"
# Only the image service is needed: no CRI, nothing under the host's /opt.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{directory}/containerd.sock"

[ttrpc]
  address = "{directory}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{directory}/opt"
"""
CONTAINERD_START_SECONDS = 30.0


class Ctr:
    """``ctr`` against one private containerd."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(["ctr", "--address", str(self.socket), *args])


@pytest.fixture(scope="module")
def ctr() -> Iterator[Ctr]:
    """A containerd of its own (root, state, socket in a temporary directory), as root."""
    require_binary("containerd")
    require_binary("ctr")
    # A unix socket path must stay under 108 bytes; pytest's directories are long.
    directory = Path(tempfile.mkdtemp(prefix="igctd-"))
    config = directory / "config.toml"
    config.write_text(_CONTAINERD_CONFIG.format(directory=directory))
    log_path = directory / "containerd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["containerd", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = Ctr(directory / "containerd.sock")
    try:
        _wait_until_serving(client, process, log_path)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_serving(client: Ctr, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + CONTAINERD_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if client.socket.exists() and client("version").returncode == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"containerd did not start:\n{log_path.read_text()[-4000:]}", pytrace=False)


def test_ctr_pulls_docker_hub_names_through_the_gateway(
    gateway: Gateway, digest: str, ctr: Ctr, tmp_path: Path
) -> None:
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / "docker.io").mkdir(parents=True)
    (hosts_dir / "docker.io" / "hosts.toml").write_text(client_config(gateway, "containerd"))
    offset = gateway.log_size()
    # No --plain-http: the hosts.toml's http:// host is what allows plain HTTP. The
    # native snapshotter unpacks anywhere (overlayfs may not nest in a container).
    pulled = ctr(
        "images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", "native", HUB_REFERENCE
    )
    assert pulled.returncode == 0, describe(pulled)
    listed = ctr("images", "list")
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [row[2] for row in rows if row and row[0] == HUB_REFERENCE] == [digest], listed.stdout
    assert_pulled_through(gateway, offset, "containerd/")
