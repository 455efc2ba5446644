"""``--profile DIR``: a py-spy flame graph of the gateway for each case of the run.

py-spy samples a running process from outside (no change to imagegate, little overhead)
and follows its worker processes (``--subprocesses``). It records only while a case runs,
so each SVG shows where that hot path spends the gateway's CPU. py-spy is not a
dependency of the project: ``.venv/bin/pip install py-spy``; it needs ptrace (root, or
``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SAMPLES_PER_SECOND = 200
ATTACH_SECONDS = 5.0


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def py_spy_missing() -> str | None:
    if py_spy_binary() is None:
        return "py-spy is not installed (.venv/bin/pip install py-spy): --profile needs it"
    return None


@contextlib.contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """Record ``pid`` and its children into the flame graph ``output`` while the block runs
    (nothing when ``output`` is None)."""
    binary = py_spy_binary()
    if output is None or binary is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    log = output.with_suffix(".log").open("wb")
    recorder = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            str(SAMPLES_PER_SECOND),
            "--format",
            "flamegraph",
            "--output",
            str(output),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_sampling(output.with_suffix(".log"), recorder)
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
        log.close()


def _wait_until_sampling(log: Path, recorder: subprocess.Popen[bytes]) -> None:
    """py-spy takes a moment to attach: a short loop must not start before it samples."""
    deadline = time.monotonic() + ATTACH_SECONDS
    while time.monotonic() < deadline and recorder.poll() is None:
        if b"Sampling" in log.read_bytes():
            return
        time.sleep(0.02)
