"""The composition root: the one place that builds the gateway's objects and wires them.

Settings are read once (``config.load_settings``); everything else receives what it
needs through its constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from imagegate import datadir, logs, workers
from imagegate.audit.recorder import AuditRecorder
from imagegate.audit.retention import RetentionTask
from imagegate.audit.webhooks import WebhookDispatcher
from imagegate.auth.tokens import SigningKey, TokenIssuer
from imagegate.config import Settings
from imagegate.core.errors import RegistryError
from imagegate.db import Database
from imagegate.hosted.interfaces import HostedRegistry
from imagegate.hosted.registry import HostedContent
from imagegate.http import api, console
from imagegate.http.api.framework import ApiError
from imagegate.http.api.framework import error_response as api_error_response
from imagegate.http.authorize import Authorizer
from imagegate.http.challenge import TokenRealm
from imagegate.http.console.refusals import ProblemPages
from imagegate.http.errors import error_response, internal_error_response
from imagegate.http.health import Readiness, healthz
from imagegate.http.identity import RegistryAuthenticator
from imagegate.http.limits import BodyLimit, BodyTooLarge, LimitedHttpTools, RequestLimits
from imagegate.http.metrics import MetricsEndpoint
from imagegate.http.middleware import AuditMiddleware, RequestLogMiddleware
from imagegate.http.push import PushAPI
from imagegate.http.registry import RegistryAPI
from imagegate.http.token import TokenEndpoint
from imagegate.metrics import Metrics, mark_process_dead, multiprocess_directory
from imagegate.proxy.interfaces import RegistryContent
from imagegate.proxy.service import ProxyContent
from imagegate.services import Services, close_services, open_services

TOKEN_ISSUER = "imagegate"


def build_app(
    settings: Settings,
    services: Services,
    proxy: RegistryContent,
    hosted: HostedRegistry,
    pipeline: AuditPipeline,
) -> Starlette:
    audit = pipeline.recorder
    realm = TokenRealm(settings.public_url)
    issuer = TokenIssuer(
        SigningKey.load_or_create(settings.keys_dir), TOKEN_ISSUER, settings.token_ttl_seconds
    )
    authorizer = Authorizer(
        RegistryAuthenticator(issuer, realm),
        services.access,
        audit,
        token_live=services.accounts.token_live,
    )
    push = PushAPI(authorizer, hosted, services.repositories)
    registry = RegistryAPI(authorizer, proxy, hosted, push, services.repositories, services.signin)
    token = TokenEndpoint(
        issuer,
        services.accounts.authenticate,
        realm.service,
        services.signin.refusal,
        audit=audit,
        is_public=services.access.is_public,
    )
    metrics_endpoint = MetricsEndpoint(pipeline.metrics)
    readiness = Readiness({"database": services.database.ping, "storage": proxy.ready})

    async def registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        return error_response(request, exc, realm)

    async def internal_error(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception and then sends this instead of plain text.
        return internal_error_response(request, realm)

    def registry_too_large(request: Request, error: BodyTooLarge) -> Response:
        return error_response(request, error, realm)

    def api_too_large(request: Request, error: BodyTooLarge) -> Response:
        return api_error_response(ApiError(error.status, error.message))

    api_routes = api.routes(settings, services, audit)
    console_routes = console.routes(settings, services, audit)
    all_methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            *api_routes,
            *console_routes,
            Route("/v2/", registry.base, methods=["GET", "HEAD"]),
            Route("/v2", registry.base, methods=["GET", "HEAD"]),
            Route("/v2/{path:path}", registry.dispatch, methods=all_methods),
            Route("/token", token.get, methods=["GET"]),
            Route("/token", token.post, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_endpoint.get, methods=["GET"]),
            Route("/readyz", readiness.endpoint, methods=["GET", "HEAD"]),
        ],
        exception_handlers={RegistryError: registry_error, Exception: internal_error},
    )
    # Innermost, so a refused body is logged and its request has its audit origin.
    app.add_middleware(
        BodyLimit,
        default=registry_too_large,
        areas=[(api_routes, api_too_large), (console_routes, ProblemPages().too_large)],
    )
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(AuditMiddleware, audit=audit)
    return app


@dataclass(frozen=True)
class AuditPipeline:
    """The audit trail's moving parts: the batching recorder, and the webhook sender;
    and the metrics they count in."""

    recorder: AuditRecorder
    metrics: Metrics
    webhooks: WebhookDispatcher | None = None


@contextlib.asynccontextmanager
async def running_audit(
    settings: Settings, database: Database, metrics: Metrics | None = None
) -> AsyncIterator[AuditPipeline]:
    """The recorder, retention, and webhook delivery when receivers are configured.

    They stop in reverse order, the recorder last: what is still buffered is written
    before the database closes.
    """
    metrics = metrics or Metrics()
    async with contextlib.AsyncExitStack() as stack:
        recorder = AuditRecorder(database, metrics=metrics)
        recorder.start()
        stack.push_async_callback(recorder.close)
        retention = RetentionTask(database, settings.audit_retention_days)
        await retention.start()
        stack.push_async_callback(retention.close)
        webhooks = None
        if settings.audit_webhook_urls:
            webhooks = WebhookDispatcher(
                database,
                settings.audit_webhook_urls,
                settings.audit_webhook_authorization,
                registry_url=settings.public_url,
                metrics=metrics,
            )
            await webhooks.start()
            stack.push_async_callback(webhooks.close)
        yield AuditPipeline(recorder, metrics, webhooks)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Starlette]:
    """Open the database and the content store, build the app, and close both after."""
    datadir.create(settings.data_dir)
    services = await open_services(settings)
    try:
        # Read registry.json now: an invalid one is logged at startup, not at first use.
        await services.signin.requirement()
        # One content store: the cache and hosted repositories share blobs by digest.
        proxy = ProxyContent.from_settings(settings)
        try:
            hosted = HostedContent.from_settings(
                settings, store=proxy.store, ledger=services.quotas
            )
            async with running_audit(settings, services.database) as pipeline:
                yield build_app(settings, services, proxy, hosted, pipeline)
        finally:
            await proxy.close()
    finally:
        await close_services(services)


def server_config(
    app: ASGIApp,
    settings: Settings,
    limits: RequestLimits = RequestLimits(),  # noqa: B008 (frozen, shared)
) -> uvicorn.Config:
    """How uvicorn serves the gateway: httptools with limits on request headers."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        http=LimitedHttpTools.with_limits(limits),
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=workers.GRACEFUL_SHUTDOWN_SECONDS,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop signal ends ``serve`` and no more.

    uvicorn raises the signal again once it has drained, with the handler there was
    before: the default one kills the process before the audit recorder has written
    what it holds (``running_gateway`` closes it after ``serve`` returns).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _stop_when_orphaned(server: uvicorn.Server, supervisor: int) -> None:
    """Stop serving once the supervisor is gone (killed: it could not pass a stop on)."""
    while os.getppid() == supervisor:  # noqa: ASYNC110 (no event says a parent died)
        await asyncio.sleep(1.0)
    server.should_exit = True


async def _serve(settings: Settings, sock: socket.socket, supervisor: int | None) -> None:
    async with running_gateway(settings) as app:
        server = _Server(server_config(app, settings))
        watch = None
        if supervisor is not None:
            watch = asyncio.create_task(_stop_when_orphaned(server, supervisor))
        try:
            await server.serve(sockets=[sock])
        finally:
            if watch is not None:
                watch.cancel()


def serve_on(settings: Settings, sock: socket.socket, supervisor: int | None = None) -> None:
    """Serve the gateway on ``sock`` until stopped: one worker (``supervisor`` its parent's
    pid), or the whole gateway with ``--workers 1``."""
    logs.configure(settings.log_level)
    try:
        import uvloop
    except ImportError:  # uvloop is optional; asyncio's own loop works too
        asyncio.run(_serve(settings, sock, supervisor))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(settings, sock, supervisor))


def prepare(settings: Settings) -> None:
    """What is done once, before any worker starts, so that workers do not race on it:
    the data directory, the database's migrations and the signing key."""
    datadir.create(settings.data_dir)
    datadir.warn_exposed(settings)  # what an older version or a copy left readable
    asyncio.run(_migrate(settings.effective_database_url))
    SigningKey.load_or_create(settings.keys_dir)


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await database.migrate()
    finally:
        await database.dispose()


def serve(settings: Settings) -> None:
    """Run the gateway until interrupted (``imagegate serve``).

    With one worker, in this process; with more, in that many processes under a
    ``workers.Supervisor``, sharing one listening socket and one metrics directory.
    """
    logs.configure(settings.log_level)
    prepare(settings)
    sock = workers.bind(settings.host, settings.port)
    try:
        if settings.workers == 1:
            serve_on(settings, sock)
            return
        with multiprocess_directory(settings.data_dir / "metrics") as directory:
            workers.Supervisor(
                functools.partial(serve_on, settings, supervisor=os.getpid()),
                sock,
                settings.workers,
                on_exit=functools.partial(mark_process_dead, directory=directory),
            ).run()
    finally:
        sock.close()
