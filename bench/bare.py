"""The stack's own ceiling: a bare FastAPI endpoint on the gateway's server and TLS set-up.

``python -m bench.bare`` reads the gateway's settings from ``SLUIS_*`` like ``sluis serve``,
builds the same uvicorn configuration (TLS context with client-certificate checks and CRL,
connection guard, handshake timeout) and swaps the application for one route that returns
the bytes in the file ``BENCH_BODY``: no token, no database, no policy, no audit.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

from gateway.server import GatewayServer, uvicorn_config
from gateway.settings import Settings


def bare_app(body: bytes) -> FastAPI:
    """One route answering every dataset query with ``body`` as CSV, plus /healthz."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/datasets/{dataset}/data")
    async def query(dataset: str) -> Response:  # noqa: ARG001 - the same path as the gateway's
        return Response(body, media_type="text/csv")

    return app


def main() -> None:
    """Serve the bare app until terminated."""
    settings = Settings()
    config = uvicorn_config(settings, log_level="warning")
    config.app = bare_app(Path(os.environ["BENCH_BODY"]).read_bytes())
    GatewayServer(
        config,
        handshake_timeout=settings.tls_handshake_timeout,
        close_timeout=settings.tls_close_timeout,
    ).run()


if __name__ == "__main__":
    main()
