"""``imagegate client-config``: which gateway address it configures, and bad --server URLs."""

from __future__ import annotations

import os
import socket
import tomllib

import pytest

from imagegate.cli.main import main

Printed = tuple[int, str, str]


@pytest.fixture(autouse=True)
def only_chosen_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("IMAGEGATE_"):
            monkeypatch.delenv(key)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Printed:
    code = main(["client-config", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _mirror(text: str) -> str:
    return str(tomllib.loads(text)["registry"][0]["mirror"][0]["location"])


def test_the_server_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--for", "podman", "--server", "https://gw.example:5000")
    assert (code, err) == (0, "")
    assert _mirror(out) == "gw.example:5000"


def test_the_public_url_by_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGATE_PUBLIC_URL", "https://registry.example")
    code, out, err = _run(capsys, "--for", "containerd")
    assert code == 0
    assert tomllib.loads(out)["host"] == {
        "https://registry.example": {"capabilities": ["pull", "resolve"]}
    }
    assert "pass --server URL for another address" in err


def test_else_where_serve_listens(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGATE_HOST", "10.1.2.3")
    monkeypatch.setenv("IMAGEGATE_PORT", "5050")
    code, out, _ = _run(capsys, "--for", "docker")
    assert code == 0
    assert "docker login 10.1.2.3:5050\n" in out


def test_a_gateway_on_every_address_is_named_by_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGATE_HOST", "0.0.0.0")
    code, out, _ = _run(capsys, "--for", "podman")
    assert code == 0
    assert _mirror(out) == f"{socket.getfqdn().lower()}:5000"


@pytest.mark.parametrize(
    ("server", "complaint"),
    [
        ("gw.example:5000", "is not an http:// or https:// URL"),
        ("https://gw.example/mirror", "has a path"),
    ],
)
def test_a_bad_server_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], server: str, complaint: str
) -> None:
    code, out, err = _run(capsys, "--for", "podman", "--server", server)
    assert (code, out) == (2, "")
    assert err.startswith(f"imagegate: error: --server: {server!r} ") and complaint in err


def test_an_unknown_client(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--for", "cri-o")
    assert code == 2 and "invalid choice: 'cri-o'" in err
