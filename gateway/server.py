"""``sluis serve``: uvicorn with our own TLS context and the ASGI TLS extension shim."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import multiprocessing
import signal
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.audit.wiring import check_audit_identity
from gateway.http.cert_reload import ServerCertificate
from gateway.http.connection_limits import ConnectionCounter, ConnectionLimits
from gateway.http.guarded import guarded_protocol
from gateway.http.health_port import health_only
from gateway.http.tls_accept import handshaking
from gateway.http.tls_scope import TLSHttpToolsProtocol
from gateway.ratelimit.service import Clock
from gateway.settings import Settings, SettingsError, secret_file_exposure
from gateway.storage.db import Database

log = logging.getLogger("sluis.server")

#: uvicorn ticks (0.1 s each) between looks at the server certificate's files.
RELOAD_TICKS = 50
#: How long a stop waits for the responses it cancelled to end (their streams close the
#: connector and queue the completion entry: milliseconds, unless a connector hangs).
CANCELLED_RESPONSES_SECONDS = 5.0


def build_ssl_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ server context that asks for (or requires) a client certificate.

    The handshake verifies the client chain against ``tls_client_ca``; the app then
    re-verifies it with ``certs.verify`` (EKU, organisation identifier, CRL).
    """
    if settings.tls_cert is None or settings.tls_key is None:
        raise SettingsError(
            "TLS needs SLUIS_TLS_CERT and SLUIS_TLS_KEY (or plain_http behind a proxy)"
        )
    if settings.tls_client_ca is None:
        raise SettingsError("no client CA bundle: set SLUIS_TLS_CLIENT_CA")
    try:
        exposed = secret_file_exposure(settings.tls_key)
    except OSError:
        exposed = None  # load_cert_chain below refuses a missing file with its own reason
    if exposed is not None:
        raise SettingsError(f"TLS key {settings.tls_key} {exposed}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        context.load_verify_locations(cafile=settings.tls_client_ca)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"TLS material cannot be loaded: {exc}") from exc
    context.verify_mode = (
        ssl.CERT_REQUIRED if settings.tls_client_auth == "required" else ssl.CERT_OPTIONAL
    )
    context.set_alpn_protocols(["http/1.1"])
    return context


def uvicorn_config(
    settings: Settings,
    *,
    http: type[asyncio.Protocol] = TLSHttpToolsProtocol,
    clock: Clock | None = None,
    **extra: Any,
) -> uvicorn.Config:
    """The uvicorn configuration for ``settings`` (TLS unless plain_http).

    ``http`` is the HTTP protocol class: one of the TLS-extension shims in gateway.http.tls_scope;
    it is served behind the connection guard (gateway.http.guard) with the settings' limits.
    ``clock`` is for tests: it drives the rate-limit windows.
    """
    if settings.insecure_dev_mode:
        log.warning("INSECURE DEV MODE: throwaway keys are accepted; never use this in production")
    app = create_app(settings, clock=clock)
    factory: Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext] | None = None
    if not settings.plain_http:
        context = build_ssl_context(settings)

        def factory(
            _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
        ) -> ssl.SSLContext:
            return context

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(http, ConnectionLimits.from_settings(settings)),
        ssl_context_factory=factory,
        proxy_headers=False,  # the socket peer is the truth; proxies are judged by trusted_proxies
        server_header=False,
        lifespan="on",
        # The TLS accept path (gateway.http.tls_accept, tls_alert) is built on asyncio's own
        # transports and SSL protocol; uvicorn's "auto" would take uvloop wherever it can be
        # imported, and every handshake would then fail.
        loop="asyncio",
        ws="none",  # no WebSocket: an upgrade never leaves the guarded HTTP protocol
        # A backstop: the guard already refused longer heads before h11 saw them.
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        # uvicorn waits for responses under way without a bound by default: a slow reader of
        # a long download held a stop until the pod was killed, its exchange left open.
        # Cancelled, the stream records its exchange as interrupted before the exit.
        timeout_graceful_shutdown=settings.shutdown_timeout,
        **extra,
    )


class GatewayServer(uvicorn.Server):
    """uvicorn's server, with TLS handshakes counted and timed by us.

    uvicorn creates a TLS listener whose HTTP protocol exists only after the handshake, with
    asyncio's 60 s handshake timeout. uvicorn offers no option for either; the listener is
    made inside ``startup``, so for that call only the loop's ``create_server`` makes a
    plain TCP listener whose connections are counted at once and upgraded to TLS with our
    timeout (:mod:`gateway.http.tls_accept`).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        handshake_timeout: float,
        close_timeout: float,
        health: uvicorn.Config | None = None,
        tls_files: tuple[Path, Path] | None = None,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__(config)
        #: Freeze (``gc.freeze``) what start-up made once the ports listen: for a process
        #: that is this server (``sluis serve``), not for one that hosts several in turn.
        self.freeze_gc = freeze_gc
        self.handshake_timeout = handshake_timeout
        #: Seconds a closed TLS connection waits for the client's close_notify.
        self.close_timeout = close_timeout
        #: Server certificate and key, re-read on change (gateway.http.cert_reload).
        self.tls_files = tls_files
        self.certificate: ServerCertificate | None = None
        #: The plain-HTTP health port's server (settings.health_port), started with this one.
        self.health = uvicorn.Server(health) if health is not None else None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self._startup_gateway(sockets)
        if self.should_exit:
            return
        # "started" means both ports listen and start-up's objects are frozen (uvicorn set it)
        self.started = False
        if self.health is not None:
            # What uvicorn's Server._serve does before startup; a port it cannot bind
            # ends the process (SystemExit), gateway port and all.
            self.health.config.load()
            self.health.lifespan = self.health.config.lifespan_class(self.health.config)
            await self.health.startup()
        if self.freeze_gc:
            # What start-up made (the app, its caches, the libraries) lives as long as the
            # process: out of the cyclic collector's reach, a full collection walks only
            # what requests made since (measured on a loaded gateway: 70-160 ms a full
            # collection before, every request stopped meanwhile; about 14 ms after).
            gc.collect()
            gc.freeze()
        self.started = True

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's tick (every 0.1 s); every ``RELOAD_TICKS`` also the certificate check."""
        if counter % RELOAD_TICKS == 0:
            self.reload_certificate()
        return await super().on_tick(counter)

    def reload_certificate(self) -> bool:
        """Load the server certificate anew when its files changed; True when it did."""
        if self.certificate is None and self.tls_files is not None and self.config.ssl:
            self.certificate = ServerCertificate(self.config.ssl, *self.tls_files)
        return self.certificate.check() if self.certificate is not None else False

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.health is not None and self.health.started:
            await self.health.shutdown()
        # uvicorn cancels the responses still running at timeout_graceful_shutdown and goes
        # straight on to the lifespan's shutdown, which closes the audit log and the
        # connectors while the cancelled streams are still ending (their completion entries
        # not yet queued). For this call only, the lifespan's shutdown first lets them end.
        lifespan: Any = self.lifespan
        shut = lifespan.shutdown

        async def after_the_responses() -> None:
            await self._responses_ended()
            await shut()

        lifespan.shutdown = after_the_responses
        try:
            await super().shutdown(sockets)
        finally:
            del lifespan.shutdown  # the class's method again

    async def _responses_ended(self) -> None:
        """Wait (a bounded time) for the responses' tasks, cancelled or done, to end; then
        drop the connections they were cut off on (uvicorn leaves them open, and the loop
        ends under them: their sockets were left to the garbage collector)."""
        tasks = list(self.server_state.tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=CANCELLED_RESPONSES_SECONDS)
        for connection in list(self.server_state.connections):
            transport: asyncio.Transport | None = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()  # the response was cut off: no clean end to send

    async def _startup_gateway(self, sockets: list[socket.socket] | None) -> None:
        loop = asyncio.get_running_loop()
        if self.config.ssl is None:
            await super().startup(sockets)
            return
        timeout = self.handshake_timeout
        guarded: Any = self.config.http_protocol_class  # made by guarded_protocol
        counter: ConnectionCounter = guarded.counter
        create_server = loop.create_server

        async def counting_handshakes(*args: Any, **kwargs: Any) -> asyncio.Server:
            make_http, *rest = args  # uvicorn's protocol factory, then its own arguments
            context = kwargs.pop("ssl")
            protocol = handshaking(
                make_http, context, timeout, counter, close_timeout=self.close_timeout
            )
            return await create_server(protocol, *rest, **kwargs)

        loop.create_server = counting_handshakes  # type: ignore[method-assign]  # see docstring
        try:
            await super().startup(sockets)
        finally:
            del loop.create_server  # the class's method again


def gateway_server(settings: Settings, *, freeze_gc: bool = False, **extra: Any) -> GatewayServer:
    """The server ``sluis serve`` runs (there with ``freeze_gc``); ``extra`` goes to
    uvicorn.Config."""
    config = uvicorn_config(settings, **extra)
    tls_files = None
    if not settings.plain_http and settings.tls_cert and settings.tls_key:
        tls_files = (settings.tls_cert, settings.tls_key)
    return GatewayServer(
        config,
        handshake_timeout=settings.tls_handshake_timeout,
        close_timeout=settings.tls_close_timeout,
        health=health_config(settings, config, **extra),
        tls_files=tls_files,
        freeze_gc=freeze_gc,
    )


def health_config(
    settings: Settings, gateway: uvicorn.Config, **extra: Any
) -> uvicorn.Config | None:
    """The plain-HTTP health port's uvicorn configuration, when ``health_port`` is set.

    It serves the gateway's own app (whose lifespan the gateway port's server runs), behind
    :func:`gateway.http.health_port.health_only` and the same connection guard.
    """
    if settings.health_port is None:
        return None
    if not isinstance(gateway.app, Starlette):
        raise TypeError("the gateway's uvicorn config must hold the gateway app itself")
    return uvicorn.Config(
        health_only(gateway.app),
        host=settings.health_host,
        port=settings.health_port,
        # The same front-door guard as the gateway port, with a counter of its own.
        http=guarded_protocol(TLSHttpToolsProtocol, ConnectionLimits.from_settings(settings)),
        proxy_headers=False,
        server_header=False,
        lifespan="off",
        ws="none",
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        timeout_keep_alive=5,
        **extra,
    )


def serve(settings: Settings) -> None:
    """Run the gateway until interrupted; refuse first (SettingsError) what cannot start.

    The audit log's identity is checked before uvicorn runs, so a contradiction is the
    CLI's one-line reason; the lifespan checks again (uvicorn would log a traceback).
    """
    check_port_free(settings.host, settings.port)  # before the whole start-up runs
    server = gateway_server(settings, freeze_gc=True)
    asyncio.run(check_audit_identity(settings, now=datetime.now(UTC)))
    server.run()


def serve_workers(settings: Settings, workers: int) -> None:
    """Run ``workers`` gateway processes on one listening socket until interrupted.

    The parent checks the port and the audit log's identity and migrates once, binds the
    socket, then starts each worker (spawned, so nothing of the parent's event loop is
    shared): its own app, connection pool and audit log, ``instance_name`` suffixed with
    its number, the health port only in worker 0. The kernel spreads connections over the
    workers. The one audit log is sequenced across them by the database (PostgreSQL's
    advisory lock; SQLite's write lock). If a worker dies the others are stopped and the
    parent exits non-zero, so a supervisor restarts the whole set.
    """
    check_port_free(settings.host, settings.port)
    asyncio.run(check_audit_identity(settings, now=datetime.now(UTC)))
    if settings.auto_migrate:
        asyncio.run(_migrate(settings))
    listener = socket.create_server((settings.host, settings.port))
    spawn = multiprocessing.get_context("spawn")
    name = settings.instance_name or socket.gethostname()
    processes = [
        spawn.Process(
            target=_worker,
            args=(settings, f"{name}-{i}", listener, i == 0),
            name=f"sluis-worker-{i}",
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and all(p.is_alive() for p in processes):
            processes[0].join(timeout=0.5)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=30)
        listener.close()
    if not stopping:
        raise SettingsError("a gateway worker stopped; the others were stopped too")


def _worker(settings: Settings, instance: str, listener: socket.socket, health: bool) -> None:
    """One worker process of ``serve_workers``: serves ``listener`` until terminated."""
    mine = settings.model_copy(
        update={
            "instance_name": instance,
            "auto_migrate": False,
            "health_port": settings.health_port if health else None,
        }
    )
    gateway_server(mine, freeze_gc=True).run(sockets=[listener])


async def _migrate(settings: Settings) -> None:
    db = Database(settings.effective_database_url)
    try:
        await db.upgrade()
    finally:
        await db.dispose()


def check_port_free(host: str, port: int) -> None:
    """SettingsError when nothing could listen on ``host:port`` (in use, not ours to bind)."""
    if port == 0:
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                f"{host}:{port} is in use by another process: stop it, or choose another "
                "port (--port or SLUIS_PORT)"
            ) from exc
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
