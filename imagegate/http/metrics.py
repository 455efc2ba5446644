"""``GET /metrics``: the gateway's metrics in Prometheus' text exposition format.

Only counts, no names or addresses, so it is served without authentication like most
exporters; a scraper needs no account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from imagegate.audit.recorder import AuditRecorder
from imagegate.audit.webhooks import WebhookDispatcher

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "counter" or "gauge"
    help: str
    value: Callable[[], int]

    def exposition(self) -> str:
        return (
            f"# HELP {self.name} {self.help}\n"
            f"# TYPE {self.name} {self.kind}\n"
            f"{self.name} {self.value()}\n"
        )


def audit_metrics(recorder: AuditRecorder) -> tuple[Metric, ...]:
    return (
        Metric(
            "imagegate_audit_events_written_total",
            "counter",
            "Audit events written to the database.",
            lambda: recorder.written,
        ),
        Metric(
            "imagegate_audit_events_dropped_total",
            "counter",
            "Audit events lost: the buffer was full, or the database refused the event.",
            lambda: recorder.dropped,
        ),
        Metric(
            "imagegate_audit_write_failures_total",
            "counter",
            "Failed attempts to write a batch of audit events (each is retried).",
            lambda: recorder.write_failures,
        ),
        Metric(
            "imagegate_audit_events_buffered",
            "gauge",
            "Audit events recorded and not yet written.",
            lambda: recorder.buffered,
        ),
    )


def webhook_metrics(dispatcher: WebhookDispatcher) -> tuple[Metric, ...]:
    return (
        Metric(
            "imagegate_audit_webhook_events_delivered_total",
            "counter",
            "Audit events webhook receivers acknowledged (all receivers).",
            lambda: sum(stats.delivered for stats in dispatcher.stats),
        ),
        Metric(
            "imagegate_audit_webhook_events_skipped_total",
            "counter",
            "Event ids a receiver never got: not in the database within the grace period.",
            lambda: sum(stats.skipped for stats in dispatcher.stats),
        ),
        Metric(
            "imagegate_audit_webhook_failures_total",
            "counter",
            "Failed webhook deliveries (each is retried with backoff).",
            lambda: dispatcher.failures,
        ),
    )


class MetricsEndpoint:
    def __init__(self, metrics: tuple[Metric, ...]) -> None:
        self._metrics = metrics

    async def get(self, request: Request) -> Response:
        body = "".join(metric.exposition() for metric in self._metrics)
        return Response(body, media_type=CONTENT_TYPE)
