"""A throttled link to a registry: a TCP proxy that paces responses to a byte rate.

Loopback moves a blob at several GB/s, so a first pull against it measures the gateway's
own work; a real upstream is a network away. This proxy sits in front of the bench's
``docker-registry`` and lets the bytes it answers flow at ``--bytes-per-second`` (shared
by every connection, as one network link is), while requests pass unthrottled. It prints
the request line of every request it forwards (``GET /v2/...``), so the bench can count
how often a blob was fetched from the upstream.

Run by the bench as ``python -m bench.throttle --target HOST:PORT --port P`` (see
``ThrottledLink``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.process import ServerProcess

DEFAULT_BYTES_PER_SECOND = 100_000_000  # about a 1 Gbit/s link
CHUNK = 64 * 1024
BURST = 256 * 1024
_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]$")
_MAX_LINE = 16 * 1024


class TokenBucket:
    """``rate`` bytes a second with a ``burst``, shared by every taker.

    ``take`` returns how long the caller must wait before sending; the debt of one caller
    delays the next, so concurrent streams share the rate instead of each getting it.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self, amount: int) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= amount
        return max(0.0, -self._tokens / self.rate)


class RequestLines:
    """The request lines of an HTTP/1.1 byte stream fed to it in arbitrary pieces."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        lines = (self._partial + data).split(b"\r\n")
        self._partial = lines.pop()[-_MAX_LINE:]  # a body's bytes never grow it unbounded
        found = []
        for line in lines:
            match = _REQUEST_LINE.match(line)
            if match:
                found.append((match[1].decode(), match[2].decode(errors="replace")))
        return found


async def _requests(
    client: asyncio.StreamReader, upstream: asyncio.StreamWriter, peer: str
) -> None:
    parser = RequestLines()
    try:
        while data := await client.read(CHUNK):
            for method, target in parser.feed(data):
                print(f"{method} {target} from {peer}", flush=True)
            upstream.write(data)
            await upstream.drain()
        if upstream.can_write_eof():
            upstream.write_eof()
    except OSError:
        pass


async def _responses(
    upstream: asyncio.StreamReader, client: asyncio.StreamWriter, bucket: TokenBucket
) -> None:
    try:
        while data := await upstream.read(CHUNK):
            wait = bucket.take(len(data))
            if wait:
                await asyncio.sleep(wait)
            client.write(data)
            await client.drain()
    except OSError:
        pass
    finally:
        client.close()


def _handler(
    host: str, port: int, bucket: TokenBucket
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        peer = "{}:{}".format(*client.get_extra_info("peername")[:2])
        try:
            upstream_reader, upstream = await asyncio.open_connection(host, port)
        except OSError:
            client.close()
            return
        try:
            await asyncio.gather(
                _requests(client_reader, upstream, peer),
                _responses(upstream_reader, client, bucket),
            )
        finally:
            upstream.close()
            client.close()

    return handle


async def serve(port: int, target: str, rate: float) -> None:
    host, _, target_port = target.rpartition(":")
    bucket = TokenBucket(rate, BURST, time.monotonic)
    server = await asyncio.start_server(_handler(host, int(target_port), bucket), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throttle", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    parser.add_argument("--target", required=True, help="HOST:PORT of the registry")
    parser.add_argument("--bytes-per-second", type=float, default=DEFAULT_BYTES_PER_SECOND)
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.target, args.bytes_per_second))
    return 0


class ThrottledLink(ServerProcess):
    """This proxy as a subprocess in front of ``target_url``, ready once it answers."""

    name = "bench.throttle"
    ready_path = "/v2/"
    ready_statuses = frozenset({200, 401})

    def __init__(
        self, directory: Path, target_url: str, bytes_per_second: float = DEFAULT_BYTES_PER_SECOND
    ) -> None:
        super().__init__(directory, "throttle.log")
        self.target = target_url.removeprefix("http://")
        self.bytes_per_second = bytes_per_second

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.throttle",
            f"--port={self.port}",
            f"--target={self.target}",
            f"--bytes-per-second={self.bytes_per_second}",
        ]

    def environment(self) -> dict[str, str]:
        root = str(Path(__file__).resolve().parent.parent)  # where `bench` and `tests` live
        return {**os.environ, "PYTHONPATH": root}

    def requests_since(self, offset: int, method: str, path: str) -> int:
        """How many ``method path`` requests went through since log offset ``offset``."""
        prefix = f"{method} {path} "
        return sum(line.startswith(prefix) for line in self.log_since(offset).splitlines())


if __name__ == "__main__":
    raise SystemExit(main())
