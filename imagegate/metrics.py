"""Every metric the gateway exports, defined once, with ``prometheus_client``.

To add one: a field of ``Metrics`` here, then count it where it happens (the object
that does it receives this ``Metrics``). ``/metrics`` (``http.metrics``) serves them all.

With several workers (``imagegate serve --workers N``) each worker counts in its own
process, and ``/metrics``, whichever worker answers it, reports the sum over all of them:
prometheus_client's multiprocess mode, in which every process writes its values to
memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``: ``DATA_DIR/metrics``, which the
supervisor creates fresh (private, 0700) before it forks a worker and removes when it exits;
a worker that exits is marked dead, so the gauges (``livesum``) leave it out while the
counters keep what it counted. With one worker nothing is written to disk: each
``Metrics`` has its own registry (tests build many gateways in one process).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_process_dead

_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_PLAIN_0_0_4

# A ``_created`` sample per counter is the time it was made in one process: meaningless
# summed over workers, and not reported in multiprocess mode either.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The gateway's metrics, one set per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def counter(name: str, documentation: str) -> Counter:
            return Counter(name, documentation, registry=self.registry)

        def gauge(name: str, documentation: str) -> Gauge:
            # The gateway's value is what the live workers hold now.
            return Gauge(name, documentation, registry=self.registry, multiprocess_mode="livesum")

        self.audit_events_written = counter(
            "imagegate_audit_events_written_total", "Audit events written to the database."
        )
        self.audit_events_dropped = counter(
            "imagegate_audit_events_dropped_total",
            "Audit events lost: the buffer was full, or the database refused the event.",
        )
        self.audit_write_failures = counter(
            "imagegate_audit_write_failures_total",
            "Failed attempts to write a batch of audit events (each is retried).",
        )
        self.audit_events_buffered = gauge(
            "imagegate_audit_events_buffered", "Audit events recorded and not yet written."
        )
        self.webhook_events_delivered = counter(
            "imagegate_audit_webhook_events_delivered_total",
            "Audit events webhook receivers acknowledged (all receivers).",
        )
        self.webhook_events_skipped = counter(
            "imagegate_audit_webhook_events_skipped_total",
            "Event ids a receiver never got: not in the database within the grace period.",
        )
        self.webhook_failures = counter(
            "imagegate_audit_webhook_failures_total",
            "Failed webhook deliveries (each is retried with backoff).",
        )

    def exposition(self) -> bytes:
        """Prometheus' text format (``CONTENT_TYPE``): every worker's, or this process's."""
        directory = os.environ.get(_DIRECTORY_VARIABLE)
        if directory is None:
            return prometheus_client.generate_latest(self.registry)
        summed = CollectorRegistry()
        MultiProcessCollector(summed, directory)  # type: ignore[no-untyped-call]
        return prometheus_client.generate_latest(summed)


@contextlib.contextmanager
def multiprocess_directory(path: Path) -> Iterator[str]:
    """A fresh private directory under ``path`` for this supervisor's workers' metrics,
    named in the environment the workers inherit.

    Each supervisor has its own (named by its pid): two gateways on one data directory
    must not wipe each other's files. What a killed supervisor left is removed.
    """
    path.mkdir(mode=0o700, exist_ok=True)
    for left in path.iterdir():
        if not (left.name.isdigit() and _running(int(left.name))):
            shutil.rmtree(left, ignore_errors=True)
    own = path / str(os.getpid())
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir(mode=0o700)
    directory = str(own)
    os.environ[_DIRECTORY_VARIABLE] = directory
    # prometheus_client chooses where values live when it is imported, which the
    # supervisor did before it knew; forked workers inherit the choice made here.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield directory
    finally:
        del os.environ[_DIRECTORY_VARIABLE]
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        shutil.rmtree(directory, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not ours to judge
        return True
    return True


def mark_process_dead(pid: int, *, directory: str) -> None:
    """A worker exited: its gauges no longer count."""
    _mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
