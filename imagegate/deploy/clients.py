"""Client configuration that routes Docker Hub pulls (``docker.io/...``) through the
gateway: podman's ``registries.conf``, containerd's ``hosts.toml``, and for Docker, which
cannot use an authenticated mirror, how to use the gateway by name (REFERENCE.md section 4).

Each renderer takes a ``Gateway`` (``parse_server`` checks the URL) and returns the text
to save, with comments saying where it goes and what it does not do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

ClientKind = Literal["podman", "containerd", "docker"]
CLIENT_KINDS: tuple[ClientKind, ...] = get_args(ClientKind)
DOCKER_HUB = "docker.io"
DOCKER_HUB_SERVER = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Gateway:
    """Where clients reach the gateway."""

    scheme: Literal["http", "https"]
    host: str  # host[:port], as image references write it

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def plain_http(self) -> bool:
        return self.scheme == "http"


def parse_server(url: str) -> Gateway:
    """``http(s)://host[:port]``; raises ``ValueError`` naming what is wrong.

    The gateway serves ``/v2/`` at its root, so a path, query or user name in the URL
    would only be dropped or misread by the clients.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL such as https://gateway:5000")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r} holds credentials; give only the scheme, host and port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"{url!r} has a path; the gateway serves /v2/ at its root, give only "
            "scheme://host[:port]"
        )
    scheme: Literal["http", "https"] = "http" if parts.scheme == "http" else "https"
    return Gateway(scheme, parts.netloc.lower())


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def podman_registries_conf(gateway: Gateway) -> str:
    """A registries.conf (v2) drop-in making the gateway docker.io's mirror."""
    lines = [
        f"# imagegate: pull Docker Hub images (docker.io/...) through {gateway.url}",
        "#",
        "# Save as /etc/containers/registries.conf.d/imagegate.conf (root and every user),",
        "# or ~/.config/containers/registries.conf.d/imagegate.conf (one rootless user).",
        "# Then sign in to the gateway, not to Docker Hub:",
        f"#     podman login {gateway.host}",
        "# podman looks up a mirror's credentials by the mirror's own host, so that login",
        "# is the account the gateway sees on every docker.io pull.",
        "#",
        "# When the gateway refuses or fails, podman tries docker.io itself: block direct",
        "# egress to Docker Hub so the gateway's policy cannot be bypassed (or set the",
        "# docker.io location below to the gateway and drop the mirror).",
        "",
        "[[registry]]",
        f"prefix = {_toml(DOCKER_HUB)}",
        f"location = {_toml(DOCKER_HUB)}",
        "",
        "[[registry.mirror]]",
        f"location = {_toml(gateway.host)}",
    ]
    if gateway.plain_http:
        lines += [
            "insecure = true  # the gateway speaks plain http",
            "",
            f"# Also plain http when the gateway is named directly ({gateway.host}/ns/repo,",
            "# podman login).",
            "[[registry]]",
            f"location = {_toml(gateway.host)}",
            "insecure = true",
        ]
    return "\n".join(lines) + "\n"


def containerd_hosts_toml(gateway: Gateway) -> str:
    """A hosts.toml for docker.io with the gateway as the host tried first."""
    if gateway.plain_http:
        transport = ["  # http://: containerd talks plain HTTP to this host."]
    else:
        transport = [
            '  # A certificate from a private CA: ca = "/etc/containerd/certs.d/gateway-ca.pem"',
            "  # (skip_verify = true turns certificate checks off: for a test bed only).",
        ]
    lines = [
        f"# imagegate: pull Docker Hub images (docker.io/...) through {gateway.url}",
        "#",
        "# Save as /etc/containerd/certs.d/docker.io/hosts.toml, set the directory in",
        "# /etc/containerd/config.toml and restart containerd:",
        '#   containerd 1.x: [plugins."io.containerd.grpc.v1.cri".registry]',
        '#                     config_path = "/etc/containerd/certs.d"',
        '#   containerd 2.x: [plugins."io.containerd.cri.v1.images".registry]',
        '#                     config_path = "/etc/containerd/certs.d"',
        "# ctr reads the directory it is given:",
        "#   ctr images pull --hosts-dir /etc/containerd/certs.d --user USER "
        "docker.io/library/alpine:latest",
        "# hosts.toml holds no credentials: give the gateway account to the client",
        "# (ctr --user USER:TOKEN, or the CRI registry auth configuration).",
        "#",
        "# When the gateway refuses or fails, containerd tries the server below (Docker",
        "# Hub) itself: block direct egress to Docker Hub so the gateway's policy cannot",
        "# be bypassed.",
        "",
        f"server = {_toml(DOCKER_HUB_SERVER)}",
        "",
        f"[host.{_toml(gateway.url)}]",
        '  capabilities = ["pull", "resolve"]',
        *transport,
    ]
    return "\n".join(lines) + "\n"


def docker_usage(gateway: Gateway) -> str:
    """How Docker uses the gateway: by name, since it cannot use it as a mirror."""
    host = gateway.host
    lines = [
        f"# imagegate: Docker Engine and Docker Desktop use {gateway.url} by name.",
        "#",
        "# Sign in to the gateway (a personal access token works as the password):",
        f"docker login {host}",
        "# Docker Hub images by the gateway's name (official images under library/):",
        f"docker pull {host}/library/nginx:latest",
        f"docker pull {host}/myorg/app:1.0",
        f"# In a Dockerfile: FROM {host}/library/alpine:3",
    ]
    if gateway.plain_http:
        lines += [
            "#",
            "# Plain http: the daemon must list the gateway as an insecure registry",
            "# (127.0.0.0/8 is already). In /etc/docker/daemon.json (Docker Desktop:",
            "# Settings > Docker Engine), then restart the daemon:",
            f"#   {json.dumps({'insecure-registries': [host]})}",
        ]
    lines += [
        "#",
        '# Why not "registry-mirrors": the daemon never sends a mirror its credentials,',
        "# and silently falls back to Docker Hub when the mirror refuses or fails. A",
        "# gateway that requires sign-in is therefore useless as a mirror: use it by",
        "# name, as above. Only a gateway serving anonymous pulls can be a mirror, and it",
        "# enforces nothing unless direct egress to Docker Hub is blocked. daemon.json:",
        f"#   {json.dumps({'registry-mirrors': [gateway.url]})}",
    ]
    return "\n".join(lines) + "\n"


RENDERERS: dict[ClientKind, Callable[[Gateway], str]] = {
    "podman": podman_registries_conf,
    "containerd": containerd_hosts_toml,
    "docker": docker_usage,
}


def client_config(kind: ClientKind, gateway: Gateway) -> str:
    return RENDERERS[kind](gateway)
