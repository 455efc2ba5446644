"""``GET /metrics``: the gateway's metrics (``imagegate.metrics``) in Prometheus' text
exposition format, summed over every worker.

Only counts, no names or addresses, so it is served without authentication like most
exporters; a scraper needs no account.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from imagegate.metrics import CONTENT_TYPE, Metrics


class MetricsEndpoint:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def get(self, request: Request) -> Response:
        # Reading every worker's file is a few small reads; a scrape comes every few seconds.
        return Response(self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})
