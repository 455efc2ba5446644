"""HTTP/1.1 over a plain socket: requests written as bytes, answers read one by one, so a
test controls the connection (keep-alive, pipelining, leaving mid-body)."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


def request(method: str, target: str, headers: Mapping[str, str] | None = None) -> bytes:
    """A request without a body, on a connection kept alive."""
    lines = [f"{method} {target} HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_reply(reader: BinaryIO, method: str = "GET") -> Reply:
    """The next answer on the connection, its body read to its ``Content-Length``."""
    status_line = reader.readline()
    assert status_line, "the server closed the connection without an answer"
    headers = {}
    while (line := reader.readline().decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
    body = reader.read(length) if length else b""
    assert len(body) == length, f"the body ended after {len(body)} of {length} bytes"
    return Reply(int(status_line.split()[1]), headers, body)


def exchange(
    port: int, *requests: tuple[str, str], headers: Mapping[str, str] | None = None
) -> list[Reply]:
    """Each ``(method, target)`` in turn on one kept-alive connection to 127.0.0.1:``port``."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=60) as connection,
        connection.makefile("rb") as reader,
    ):
        replies = []
        for method, target in requests:
            connection.sendall(request(method, target, headers))
            replies.append(read_reply(reader, method))
        return replies
