"""Real registry clients, run as subprocesses: skopeo and podman (as root, vfs storage).

Each client object keeps its own HOME, auth file, configuration and (for podman) image
storage under a directory of its own, so no credentials, images or settings leak
between test users or into the host's configuration::

    skopeo = Skopeo(tmp_path / "skopeo")
    pulled = skopeo.pull(f"{gateway.host}/library/alpine:3", credentials=("bob", "pw"))
    assert pulled.returncode == 0 and pulled.digest == expected

A result carries the exit code, stdout and stderr (what a person at a terminal would
see) and, after a successful pull, the digest of the manifest the client pulled.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PULL_TIMEOUT_SECONDS = 120.0


class MissingClient(RuntimeError):
    """A client binary is not installed (``scripts/install-system-deps`` installs them)."""


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise MissingClient(
            f"{binary} is not installed; scripts/install-system-deps installs it (Debian: "
            f"apt-get install {binary})"
        )
    return path


@dataclass(frozen=True)
class ClientResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    digest: str | None = None  # of the pulled manifest, when the pull succeeded

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _isolated_environment(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's PATH and locale, and nothing that points at the host's client config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    }
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["XDG_RUNTIME_DIR"] = str(home / "run")
    env["REGISTRY_AUTH_FILE"] = str(home / "auth.json")
    env["DOCKER_CONFIG"] = str(home / ".docker")
    env.update(extra or {})
    return env


# The tests pull unsigned images from a local registry: accept them whatever the host's
# /etc/containers/policy.json says.
_SIGNATURE_POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}\n'


def _prepare_home(home: Path) -> Path:
    """Create the private HOME; return the signature policy file written into it."""
    for directory in (home / ".config", home / ".local" / "share", home / ".docker"):
        directory.mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    auth = home / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}\n')
    policy = home / "policy.json"
    policy.write_text(_SIGNATURE_POLICY)
    return policy


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=PULL_TIMEOUT_SECONDS,
        check=False,
    )


def _credential_args(flag: str, credentials: tuple[str, str] | None, anonymous: str) -> list[str]:
    if credentials is None:
        return [anonymous] if anonymous else []
    user, password = credentials
    return [flag, f"{user}:{password}"]


class Skopeo:
    """``skopeo`` with a private HOME; every pull goes to a fresh destination directory."""

    def __init__(self, directory: Path) -> None:
        self.binary = require("skopeo")
        self.directory = directory
        self.home = directory / "home"
        self.policy = _prepare_home(self.home)
        self._counter = itertools.count()
        self.env = _isolated_environment(self.home)

    def _destination(self) -> Path:
        path = self.directory / f"pull-{next(self._counter)}"
        shutil.rmtree(path, ignore_errors=True)
        return path

    def pull(
        self, reference: str, credentials: tuple[str, str] | None = None, *, layout: str = "dir"
    ) -> ClientResult:
        """``skopeo copy docker://REFERENCE dir:TMP`` (or ``oci:TMP:latest``) over plain HTTP.

        ``credentials`` None means anonymous (``--src-no-creds``).
        """
        destination = self._destination()
        target = f"dir:{destination}" if layout == "dir" else f"oci:{destination}:pulled"
        args = [
            self.binary,
            "--policy",
            str(self.policy),
            "copy",
            "--src-tls-verify=false",
            *_credential_args("--src-creds", credentials, "--src-no-creds"),
            f"docker://{reference}",
            target,
        ]
        completed = _run(args, self.env)
        digest = None
        if completed.returncode == 0:
            digest = _pulled_digest(destination, layout)
        return ClientResult(
            tuple(args), completed.returncode, completed.stdout, completed.stderr, digest
        )

    def inspect_raw(
        self, reference: str, credentials: tuple[str, str] | None = None
    ) -> ClientResult:
        """``skopeo inspect --raw``: the manifest bytes exactly as served; digest of them."""
        args = [
            self.binary,
            "inspect",
            "--raw",
            "--tls-verify=false",
            *_credential_args("--creds", credentials, "--no-creds"),
            f"docker://{reference}",
        ]
        completed = subprocess.run(
            args,
            capture_output=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=PULL_TIMEOUT_SECONDS,
            check=False,
        )
        digest = _sha256(completed.stdout) if completed.returncode == 0 else None
        return ClientResult(
            tuple(args),
            completed.returncode,
            completed.stdout.decode(errors="replace"),
            completed.stderr.decode(errors="replace"),
            digest,
        )


def _pulled_digest(destination: Path, layout: str) -> str:
    if layout == "dir":
        return _sha256((destination / "manifest.json").read_bytes())
    index = json.loads((destination / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


_CONTAINERS_CONF = """\
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
"""

_STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{root}"
runroot = "{runroot}"
"""

# Only fully qualified references are used; no short-name search, no mirrors of the host.
_REGISTRIES_CONF = """\
unqualified-search-registries = []
short-name-mode = "enforcing"
"""


class Podman:
    """``podman`` as root with vfs storage, configuration and auth file under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.binary = require("podman")
        self.directory = directory
        self.home = directory / "home"
        self.root = directory / "storage"
        # podman refuses a runroot path longer than 50 characters; pytest's are longer.
        self._short = Path(tempfile.mkdtemp(prefix="igpm-"))
        self.runroot = self._short / "run"
        self.policy = _prepare_home(self.home)
        config = directory / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "containers.conf").write_text(
            _CONTAINERS_CONF.format(events=directory / "events.log")
        )
        (config / "storage.conf").write_text(
            _STORAGE_CONF.format(root=self.root, runroot=self.runroot)
        )
        (config / "registries.conf").write_text(_REGISTRIES_CONF)
        self.env = _isolated_environment(
            self.home,
            {
                "CONTAINERS_CONF": str(config / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(config / "storage.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(config / "registries.conf"),
            },
        )

    def _base(self) -> list[str]:
        return [
            self.binary,
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
        ]

    def pull(self, reference: str, credentials: tuple[str, str] | None = None) -> ClientResult:
        """``podman pull --tls-verify=false REFERENCE``; ``credentials`` None is anonymous."""
        args = [
            *self._base(),
            "pull",
            "--tls-verify=false",
            "--signature-policy",
            str(self.policy),
            "--authfile",
            str(self.home / "auth.json"),
            *_credential_args("--creds", credentials, ""),
            reference,
        ]
        completed = _run(args, self.env)
        digest = None
        if completed.returncode == 0:
            digest = self.image_digest(reference)
        return ClientResult(
            tuple(args), completed.returncode, completed.stdout, completed.stderr, digest
        )

    def image_digest(self, reference: str) -> str:
        """The manifest digest podman recorded for a pulled image."""
        args = [*self._base(), "image", "inspect", "--format", "{{.Digest}}", reference]
        completed = _run(args, self.env)
        if completed.returncode != 0:
            raise AssertionError(f"podman image inspect failed: {completed.stderr}")
        return completed.stdout.strip()

    def close(self) -> None:
        """Remove the short-path run directory kept outside ``directory``."""
        shutil.rmtree(self._short, ignore_errors=True)

    def remove_all(self) -> None:
        """Forget every pulled image, so the next pull fetches everything again."""
        _run([*self._base(), "rmi", "--all", "--force"], self.env)


# -- pushing (additive: ``skopeo copy`` to a registry and ``podman push``) -----------------


def skopeo_push(
    skopeo: Skopeo,
    source: str,
    reference: str,
    credentials: tuple[str, str] | None,
    *,
    all_images: bool = False,
) -> ClientResult:
    """``skopeo copy SOURCE docker://REFERENCE`` (``--all`` for every image of an index);
    the result's digest is the one skopeo pushed (``--digestfile``)."""
    digest_file = skopeo.directory / f"pushed-{next(skopeo._counter)}.digest"
    args = [
        skopeo.binary,
        "--policy",
        str(skopeo.policy),
        "copy",
        "--dest-tls-verify=false",
        *_credential_args("--dest-creds", credentials, "--dest-no-creds"),
        "--digestfile",
        str(digest_file),
        *(["--all"] if all_images else []),
        source,
        f"docker://{reference}",
    ]
    completed = _run(args, skopeo.env)
    digest = digest_file.read_text().strip() if completed.returncode == 0 else None
    return ClientResult(
        tuple(args), completed.returncode, completed.stdout, completed.stderr, digest
    )


def podman_push(
    podman: Podman, image: str, destination: str, credentials: tuple[str, str] | None
) -> ClientResult:
    """``podman push IMAGE docker://DESTINATION``; the result's digest is the pushed one."""
    digest_file = podman.directory / "pushed.digest"
    args = [
        *podman._base(),
        "push",
        "--tls-verify=false",
        "--authfile",
        str(podman.home / "auth.json"),
        "--digestfile",
        str(digest_file),
        *_credential_args("--creds", credentials, ""),
        image,
        f"docker://{destination}",
    ]
    completed = _run(args, podman.env)
    digest = digest_file.read_text().strip() if completed.returncode == 0 else None
    return ClientResult(
        tuple(args), completed.returncode, completed.stdout, completed.stderr, digest
    )
