"""Real peers the end-to-end and console tests need: fail in CI when one is missing, skip
locally; and the fixtures for the peers both suites share (their conftests import them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import MissingClient, Skopeo
from tests.support.upstream import UpstreamRegistry

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(binary: str) -> None:
    """Fail (in CI, where nothing may skip) or skip (locally) when ``binary`` is missing."""
    if shutil.which(binary) is not None:
        return
    message = f"{binary} is not installed; run scripts/install-system-deps as root"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def fail_skip_in_ci(report: pytest.TestReport, what: str) -> None:
    """In CI ``what`` (a kind of test) must run: a skip there is a failure, whatever skipped
    it. For a conftest's ``pytest_runtest_makereport`` wrapper."""
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{what} may not skip in CI: {report.longrepr}"


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    """A ``docker-registry`` for the session."""
    require_binary("docker-registry")
    registry = UpstreamRegistry(tmp_path_factory.mktemp("upstream")).start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    require_binary("skopeo")
    try:
        return Skopeo(tmp_path / "skopeo")
    except MissingClient as exc:
        pytest.fail(str(exc), pytrace=False)
