"""Client configuration, parsed back as the clients parse it (TOML, JSON)."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from imagegate.deploy.clients import (
    Gateway,
    containerd_hosts_toml,
    docker_usage,
    parse_server,
    podman_registries_conf,
)

HTTP = Gateway("http", "127.0.0.1:5000")
HTTPS = Gateway("https", "gateway.example:5000")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:5000", HTTP),
        ("https://Gateway.Example:5000/", HTTPS),
        ("https://[::1]:5000", Gateway("https", "[::1]:5000")),
    ],
)
def test_parse_server(url: str, expected: Gateway) -> None:
    assert parse_server(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("gateway.example:5000", "not an http:// or https:// URL"),
        ("ftp://gateway.example", "not an http:// or https:// URL"),
        ("https://", "not an http:// or https:// URL"),
        ("https://gateway.example:99999", "invalid port"),
        ("https://user:pw@gateway.example", "holds credentials"),
        ("https://gateway.example/v2/", "has a path"),
    ],
)
def test_parse_server_refuses(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_server(url)


def test_podman_mirror_for_docker_io_over_http() -> None:
    config = tomllib.loads(podman_registries_conf(HTTP))
    hub, direct = config["registry"]
    assert (hub["prefix"], hub["location"]) == ("docker.io", "docker.io")
    assert hub["mirror"] == [{"location": "127.0.0.1:5000", "insecure": True}]
    # Naming the gateway directly (podman login) is plain http too.
    assert direct == {"location": "127.0.0.1:5000", "insecure": True}


def test_podman_mirror_over_https_is_not_insecure() -> None:
    text = podman_registries_conf(HTTPS)
    config = tomllib.loads(text)
    assert config["registry"] == [
        {
            "prefix": "docker.io",
            "location": "docker.io",
            "mirror": [{"location": "gateway.example:5000"}],
        }
    ]
    assert "/etc/containers/registries.conf.d/imagegate.conf" in text
    assert "podman login gateway.example:5000" in text


@pytest.mark.parametrize("gateway", [HTTP, HTTPS])
def test_containerd_hosts_toml(gateway: Gateway) -> None:
    text = containerd_hosts_toml(gateway)
    assert tomllib.loads(text) == {
        "server": "https://registry-1.docker.io",
        "host": {gateway.url: {"capabilities": ["pull", "resolve"]}},
    }
    assert "/etc/containerd/certs.d/docker.io/hosts.toml" in text
    assert 'config_path = "/etc/containerd/certs.d"' in text


def test_docker_is_told_to_use_the_gateway_by_name() -> None:
    text = docker_usage(HTTPS)
    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert commands == [
        "docker login gateway.example:5000",
        "docker pull gateway.example:5000/library/nginx:latest",
        "docker pull gateway.example:5000/myorg/app:1.0",
    ]


def _daemon_json_snippets(text: str) -> list[dict[str, list[str]]]:
    return [json.loads(match) for match in re.findall(r"^#\s+(\{.*\})$", text, re.MULTILINE)]


def test_the_mirror_snippet_comes_only_with_the_caveat() -> None:
    text = docker_usage(HTTPS)
    assert _daemon_json_snippets(text) == [{"registry-mirrors": ["https://gateway.example:5000"]}]
    caveat = text[text.index("registry-mirrors") :]
    assert "never sends a mirror its credentials" in caveat
    assert "falls back to Docker Hub" in caveat


def test_docker_over_http_needs_an_insecure_registry() -> None:
    assert _daemon_json_snippets(docker_usage(HTTP)) == [
        {"insecure-registries": ["127.0.0.1:5000"]},
        {"registry-mirrors": ["http://127.0.0.1:5000"]},
    ]
