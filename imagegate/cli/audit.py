"""Placeholder: filled in by the issue-5 work on this command group."""

from __future__ import annotations

import argparse


def add_parsers(
    groups: argparse._SubParsersAction[argparse.ArgumentParser],
    shared: list[argparse.ArgumentParser],
) -> None:
    """Add this module's subcommands to the ``imagegate`` parser."""
