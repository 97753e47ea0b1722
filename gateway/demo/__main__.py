"""``make demo``: a fieldlab on one laptop, end to end, in about half a minute.

A throwaway dev PKI; the gateway on SQLite; a machine maker (provider) sharing sensor
readings (Parquet), a maintenance table (SQLite) and its REST API; a university
(consumer); a security officer. Every step runs the real ``sluis`` command line or the
Python client over mTLS, and the demo exits non-zero when any step does not give the
answer it should.
"""

from __future__ import annotations

import os
import shutil
import time

from gateway.background import free_port
from gateway.demo import exchange, identity, officer, provider
from gateway.demo.common import HOME, PKI, console, gateway


def main() -> None:
    """Run the demo."""
    started = time.monotonic()
    if HOME.exists():
        shutil.rmtree(HOME)
    HOME.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")},
        "SLUIS_HOME": str(HOME),
        "SLUIS_TLS_CERT": str(PKI / "server.pem"),
        "SLUIS_TLS_KEY": str(PKI / "server.key"),
        "SLUIS_TLS_CLIENT_CA": str(PKI / "trust-bundle.pem"),
        "SLUIS_TLS_CRL": str(PKI / "crl.pem"),
        "SLUIS_INSECURE_DEV_MODE": "true",
    }
    identity.set_up(env)
    identity.foreign_org()
    results = {}
    with provider.rest_api() as api_port, gateway(env, free_port()) as url:
        results["whoami"] = identity.show_whoami(url)
        results["refusals"] = identity.show_refusals(url)
        provider.register(env, api_port)
        results["agreements"] = exchange.agreements(url)
        results["queries"] = exchange.queries(url)
    results["audit"] = officer.verify(env)
    elapsed = time.monotonic() - started
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        raise SystemExit(f"demo FAILED after {elapsed:.0f} s: {', '.join(failed)}")
    console.rule(f"[bold green]demo passed in {elapsed:.0f} s; files are in {HOME}")


if __name__ == "__main__":
    main()
