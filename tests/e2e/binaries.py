"""Real peers the end-to-end tests need: fail in CI when one is missing, skip locally."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(binary: str) -> None:
    """Fail (in CI, where nothing may skip) or skip (locally) when ``binary`` is missing."""
    if shutil.which(binary) is not None:
        return
    message = f"{binary} is not installed; run scripts/install-system-deps as root"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
