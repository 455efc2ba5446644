"""``imagegate client-config``: the configuration that routes a client's Docker Hub pulls
through this gateway (rendered by ``imagegate.deploy.clients``)."""

from __future__ import annotations

import argparse
import socket
import sys

from imagegate.cli.commands import UsageError
from imagegate.config import Settings
from imagegate.deploy.clients import CLIENT_KINDS, client_config, parse_server

# Addresses a server listens on that no client can connect to.
_ANY_ADDRESS = {"", "0.0.0.0", "::"}


def add_parsers(
    groups: argparse._SubParsersAction[argparse.ArgumentParser],
    shared: list[argparse.ArgumentParser],
) -> None:
    """Add ``client-config`` to the ``imagegate`` parser."""
    description = (
        "Print the configuration that routes a client's Docker Hub pulls through the "
        "gateway: podman registries.conf, containerd hosts.toml, or how Docker uses it."
    )
    # No database options (``shared``): only the settings naming the gateway are read.
    parser = groups.add_parser(
        "client-config", help="client configuration", description=description
    )
    parser.add_argument(
        "--for", dest="client", required=True, choices=CLIENT_KINDS, help="the client to configure"
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="the gateway as clients reach it (default: IMAGEGATE_PUBLIC_URL, else "
        "http://HOST:PORT)",
    )
    parser.set_defaults(
        command_function=None, settings_command=print_client_config, uses_data_dir=False
    )


def default_server(settings: Settings) -> str:
    """The public URL, else where ``imagegate serve`` listens by these settings."""
    if settings.public_url:
        return settings.public_url
    host = settings.host
    if host in _ANY_ADDRESS:
        host = socket.getfqdn()  # "every address": name this machine instead
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{settings.port}"


async def print_client_config(args: argparse.Namespace, settings: Settings) -> None:
    server: str = args.server or default_server(settings)
    try:
        gateway = parse_server(server)
    except ValueError as exc:
        raise UsageError(f"--server: {exc}") from None
    if args.server is None:
        print(f"# for {gateway.url}; pass --server URL for another address", file=sys.stderr)
    sys.stdout.write(client_config(args.client, gateway))
