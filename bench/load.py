"""Load: the small audited query at concurrency 1, 8 and 32, against the stack's ceilings.

One asyncio load driver for every target. Each connection presents its own client
certificate and is its own consumer (own token, own agreement); connections and tokens are
reused for the whole cell, which runs for a fixed time (``--seconds``). The request is
``GET /v1/datasets/sensors/data?format=csv`` on a 2.4 KB CSV file. Targets:

(a) the gateway on SQLite and (b) on PostgreSQL (a fresh database on
``SLUIS_BENCH_POSTGRES``; skipped with the reason when unreachable), each ``sluis serve``
in its own process; (c) a bare FastAPI endpoint on the same server and TLS set-up returning
the same bytes (bench.bare); (d) nginx with mTLS (client certificate and CRL checks) proxying
a plain upstream serving the same bytes (one worker process, like the one gateway process;
skipped with the reason when nginx is absent).

The driver is one Python process (h11 over asyncio TLS streams) sharing the machine with
the target: against (c) and (d) it is itself a large part of the cost, so their figures
are a floor of those ceilings, not the ceilings.

Printed: req/s, p50, p99 and errors per target and cell, the ratios to (c) and (d); then
one consumer on one agreement at 32 connections; then latency (one connection) after 0, 10k
and 100k earlier uses, seeded with direct SQL inserts into the usage tables.

Run with ``python -m bench.load [--seconds 5]`` (a few minutes at the default); the gateway
on SQLite alone at 8 and 32 connections, without the earlier-uses table:
``python -m bench.load --targets sqlite --connections 8,32 --uses ''``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import h11
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select

from bench.world import RESEARCH, Dataset, Party, World, child, consumer_ids
from gateway.background import free_port, serving
from gateway.datasets.schemas import DatasetSpec
from gateway.storage.db import Database
from gateway.storage.models import UsageEventRow, UsageStateRow

PG_DSN = os.environ.get("SLUIS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PATH = "/v1/datasets/sensors/data?format=csv"
CONNECTIONS = (1, 8, 32)
EARLIER_USES = (0, 10_000, 100_000)
TARGETS = ("sqlite", "postgresql", "bare", "nginx")  # (a) to (d), for --targets
POLICY = """
uid: urn:sluis:policy:bench-load
type: Offer
target: urn:sluis:dataset:sensors
prefixes: {dpv: "https://w3id.org/dpv#"}
permissions:
  - action: read
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
"""


@dataclass
class Cell:
    """What one cell measured."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu: float = float("nan")  # CPU seconds the server's processes used in the cell

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per successful request: robust on a shared machine, where
        req/s and latency follow whatever else runs."""
        return self.server_cpu / len(self.latencies) * 1e3 if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        """Latency quantile in ms (successful requests), NaN without any."""
        ordered = sorted(self.latencies)
        return (
            ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else float("nan")
        )


@dataclass(frozen=True)
class Target:
    """Where the driver sends requests, and as whom: one (context, token) per connection."""

    host: str
    port: int
    who: Sequence[tuple[ssl.SSLContext, str]]


# --- the driver ---------------------------------------------------------------------------


class _Connection:
    """One kept-alive HTTP/1.1 connection over mTLS, parsed with h11."""

    def __init__(self, target: Target, context: ssl.SSLContext, token: str) -> None:
        self.target, self.context = target, context
        self.headers = [("Host", target.host), ("Authorization", f"Bearer {token}")]
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.h11 = h11.Connection(h11.CLIENT)

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(
            self.target.host, self.target.port, ssl=self.context
        )
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        """Drop the connection at once (no TLS close_notify to wait for)."""
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None

    async def get(self) -> tuple[int, bytes]:
        """One request: (status, body)."""
        if self.writer is None or self.h11.our_state is not h11.IDLE:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        request = h11.Request(method="GET", target=PATH, headers=self.headers)
        self.writer.write(self.h11.send(request) + self.h11.send(h11.EndOfMessage()))
        status, body = 0, bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("closed by the server")
                self.h11.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return status, bytes(body)


def _error_name(status: int, body: bytes) -> str:
    if b'"type"' in body:
        kind = body.split(b'"type"', 1)[1].split(b'"')[1].decode(errors="replace")
        return f"{status} {kind.replace(':', '/').rsplit('/', 1)[-1]}"
    return str(status)


async def _loop(conn: _Connection, stop: float, cell: Cell) -> None:
    while time.perf_counter() < stop:
        started = time.perf_counter()
        cell.requests += 1
        try:
            status, body = await conn.get()
        except (OSError, ssl.SSLError, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
            cell.errors[type(exc).__name__] += 1
            conn.close()
            continue
        if status == 200:
            cell.latencies.append(time.perf_counter() - started)
        else:
            cell.errors[_error_name(status, body)] += 1


def _descendants(pid: int) -> list[int]:
    """``pid``'s child processes and theirs (Linux /proc; empty elsewhere)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(k) for k in task.read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
        for kid in kids:
            found += [kid, *_descendants(kid)]
    return found


def server_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's descendants: the target
    under test (the gateway, bench.bare, nginx and its worker); NaN without /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, kids = 0, _descendants(os.getpid())
    if not kids:
        return float("nan")
    for pid in kids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


async def drive(target: Target, seconds: float) -> Cell:
    """Open one connection per (context, token), warm each up, then load for ``seconds``."""
    conns = [_Connection(target, context, token) for context, token in target.who]
    await asyncio.gather(*(c.open() for c in conns))
    await asyncio.gather(*(c.get() for c in conns))
    cell = Cell()
    cpu, started = server_cpu(), time.perf_counter()
    await asyncio.gather(*(_loop(c, started + seconds, cell) for c in conns))
    cell.seconds = time.perf_counter() - started
    cell.server_cpu = server_cpu() - cpu
    for c in conns:
        c.close()
    await asyncio.sleep(0)  # the aborted transports close their sockets
    return cell


def run_cells(target: Target, connections: Sequence[int], seconds: float) -> dict[int, Cell]:
    """A cell per connection count, each with the first ``n`` of the target's identities."""
    cells = {}
    for n in connections:
        who = target.who[:n]
        cells[n] = asyncio.run(drive(Target(target.host, target.port, who), seconds))
    return cells


# --- the world ----------------------------------------------------------------------------


def write_csv(path: Path) -> None:
    """A CSV of about 2.4 KB."""
    lines = ["machine,temp_c,vibration,serial"]
    lines += [
        f"M{i % 50:03d},{50 + (i % 400) / 10:.1f},{(i % 97) / 100:.2f},SN{i:06d}" for i in range(85)
    ]
    path.write_text("\n".join(lines) + "\n")


def _dataset(home: Path) -> Dataset:
    connector = {"type": "files", "root": str(home), "path": "sensors.csv", "format": "csv"}
    spec = DatasetSpec(id="sensors", title="Sensors", provider="EU.EORI.NL000000001",
                       policy="inline", approval="automatic", connector=connector)  # fmt: skip
    return Dataset(spec, POLICY)


def _enrol(world: World, url: str, party: Party) -> str:
    """A token for ``party`` and its agreement (setup, not measured)."""
    with httpx.Client(base_url=url, verify=world.client_context(party), timeout=30) as client:
        form = {"grant_type": "client_credentials", "client_id": party.id}
        token = client.post("/oauth2/token", data=form)
        token.raise_for_status()
        bearer = str(token.json()["access_token"])
        body = {"dataset": "sensors", "purpose": RESEARCH}
        agreed = client.post(
            "/v1/agreements", json=body, headers={"Authorization": f"Bearer {bearer}"}
        )
        agreed.raise_for_status()
        return bearer


@contextmanager
def _postgres() -> Iterator[str]:
    """A fresh PostgreSQL database URL, dropped afterwards; RuntimeError when unreachable."""
    name = f"sluis_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise RuntimeError(f"PostgreSQL not reachable at {PG_DSN}: {exc!r}") from exc
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def seed_uses(url: str, consumer: str, total: int, now: datetime) -> None:
    """Bring ``consumer``'s use count on the dataset to ``total`` with direct SQL inserts.

    The added uses are spread over the last 30 days, numbered after the uses already spent.
    Since issue 10 the gateway reads neither these rows nor (for this policy, which has no
    rate limit) any rate buckets: the table shows that latency no longer follows them.
    """
    db = Database(url)
    try:
        async with db.session() as session:
            state = (
                await session.execute(select(UsageStateRow).where(
                    UsageStateRow.consumer_id == consumer, UsageStateRow.dataset_id == "sensors"
                ))
            ).scalar_one()  # fmt: skip
            have, add = state.use_count, total - state.use_count
            key = {
                "consumer_id": consumer,
                "dataset_id": "sensors",
                "policy_hash": state.policy_hash,
            }
            step = timedelta(days=30) / max(add, 1)
            start = now - timedelta(days=30)
            for first in range(0, max(add, 0), 5000):
                rows = [
                    {**key, "seq": have + i + 1, "at": start + step * i}
                    for i in range(first, min(add, first + 5000))
                ]
                await session.execute(insert(UsageEventRow), rows)
            if add > 0:
                state.use_count, state.updated_at = total, now
    finally:
        await db.dispose()


@dataclass
class GatewayRun:
    """A gateway's three tables' worth of cells."""

    cells: dict[int, Cell]
    one_consumer: Cell
    uses: dict[int, Cell]


def run_gateway(
    world: World, database_url: str, connections: Sequence[int], seconds: float,
    earlier_uses: Sequence[int] = EARLIER_USES,
) -> tuple[GatewayRun, bytes]:  # fmt: skip
    """Register, serve, enrol every consumer, then measure; also the response's bytes.

    ``world`` has one consumer per connection of the largest cell, plus one more (the last)
    for the earlier-uses table.
    """
    asyncio.run(world.register(database_url, clients=True, datasets=[_dataset(world.home)]))
    env = world.env(database_url) | {"SLUIS_TOKEN_LIFETIME": "3600"}
    with serving(env, free_port(), world.ca.trust_bundle_path) as url:
        port = int(url.rsplit(":", 1)[1])
        *crowd, fresh = world.consumers
        who = [(world.client_context(p), _enrol(world, url, p)) for p in crowd]
        body = httpx.get(f"{url}{PATH}", verify=who[0][0], headers={
            "Authorization": f"Bearer {who[0][1]}"}).content  # fmt: skip
        cells = run_cells(Target("127.0.0.1", port, who), connections, seconds)
        same = Target("127.0.0.1", port, [who[0]] * max(connections))
        one = asyncio.run(drive(same, seconds))
        alone = Target(
            "127.0.0.1", port, [(world.client_context(fresh), _enrol(world, url, fresh))]
        )
        uses = {}
        for level in earlier_uses:
            if level:
                asyncio.run(seed_uses(database_url, fresh.id, level, datetime.now(UTC)))
            uses[level] = asyncio.run(drive(alone, seconds))
    return GatewayRun(cells, one, uses), body


def run_bare(
    world: World, body: Path, connections: Sequence[int], seconds: float
) -> dict[int, Cell]:
    """Target (c): bench.bare in its own process."""
    port = free_port()
    env = world.env() | {"BENCH_BODY": str(body), "SLUIS_PORT": str(port),
                         "SLUIS_INSECURE_DEV_MODE": "true"}  # fmt: skip
    contexts = [world.client_context(p) for p in world.consumers]
    command = [sys.executable, "-m", "bench.bare"]
    with child(command, env, f"https://127.0.0.1:{port}", contexts[0]):
        return run_cells(
            Target("127.0.0.1", port, [(c, "-") for c in contexts]), connections, seconds
        )


NGINX_CONF = """
worker_processes 1;
{user}
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream plain {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{upstream};
    location / {{ root {d}; default_type text/csv; try_files /body.csv =404; }}
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {cert}; ssl_certificate_key {key};
    ssl_client_certificate {bundle}; ssl_verify_client on; ssl_verify_depth 2; ssl_crl {crl};
    location / {{
      proxy_pass http://plain; proxy_http_version 1.1; proxy_set_header Connection "";
    }}
  }}
}}
"""


def run_nginx(
    world: World, body: Path, connections: Sequence[int], seconds: float
) -> dict[int, Cell]:
    """Target (d): nginx, mTLS with CRL checks, proxying a static upstream (one worker)."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )
    if nginx is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    d = world.home / "nginx"
    d.mkdir()
    shutil.copyfile(body, d / "body.csv")
    port, ca = free_port(), world.ca
    conf = NGINX_CONF.format(
        d=d, port=port, upstream=free_port(), cert=ca.server_cert_path, key=ca.server_key_path,
        bundle=ca.trust_bundle_path, crl=world.crl_with_root(),
        user="user root;" if os.geteuid() == 0 else "",
    )  # fmt: skip
    (d / "nginx.conf").write_text(conf)
    contexts = [world.client_context(p) for p in world.consumers]
    command = [nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")]
    with child(command, os.environ.copy(), f"https://127.0.0.1:{port}", contexts[0]):
        return run_cells(
            Target("127.0.0.1", port, [(c, "-") for c in contexts]), connections, seconds
        )


# --- printing -----------------------------------------------------------------------------


def _errors(cell: Cell) -> str:
    if not cell.errors:
        return "0"
    detail = ", ".join(f"{n} {kind}" for kind, n in cell.errors.most_common())
    return f"{sum(cell.errors.values())} of {cell.requests} ({detail})"


def _ratio(cell: Cell, base: Cell | None) -> str:
    return f"{cell.rate / base.rate:.1%}" if base is not None and base.rate else "-"


def print_main(
    results: dict[str, dict[int, Cell]], connections: Sequence[int], seconds: float
) -> None:
    """Table 1: every target at every concurrency, with ratios to (c) and (d)."""
    bare, nginx = results.get("(c) bare FastAPI"), results.get("(d) nginx mTLS proxy")
    table = Table(
        title=f"GET {PATH} (2.4 KB CSV), {seconds:g} s per cell, a consumer per connection"
    )
    columns = ("target", "conns", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "errors",
               "vs (c)", "vs (d)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in {"target", "errors"} else "right")
    for name, cells in results.items():
        for n in connections:
            cell = cells[n]
            table.add_row(
                name, str(n), f"{cell.rate:,.1f}", f"{cell.quantile(0.5):.1f}",
                f"{cell.quantile(0.99):.1f}", f"{cell.cpu_ms:.2f}", _errors(cell),
                _ratio(cell, bare[n] if bare else None), _ratio(cell, nginx[n] if nginx else None),
            )  # fmt: skip
    Console(width=160).print(table)


def print_gateways(runs: dict[str, GatewayRun], conns: int) -> None:
    """Tables 2 and 3: one consumer at ``conns`` connections; latency after earlier uses."""
    one = Table(title=f"One consumer on one agreement, {conns} connections")
    uses = Table(title="One connection, after 0 / 10k / 100k earlier uses of its agreement")
    for column in ("target", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "errors"):
        one.add_column(column, justify="left" if column in {"target", "errors"} else "right")
    for column in ("target", "earlier uses", "req/s", "p50 ms", "p99 ms", "errors"):
        uses.add_column(column, justify="left" if column in {"target", "errors"} else "right")
    for name, run in runs.items():
        c = run.one_consumer
        one.add_row(name, f"{c.rate:,.1f}", f"{c.quantile(0.5):.1f}", f"{c.quantile(0.99):.1f}",
                    f"{c.cpu_ms:.2f}", _errors(c))  # fmt: skip
        for level, c in run.uses.items():
            uses.add_row(name, f"{level:,}", f"{c.rate:,.1f}", f"{c.quantile(0.5):.1f}",
                         f"{c.quantile(0.99):.1f}", _errors(c))  # fmt: skip
    console = Console(width=160)
    console.print(one)
    console.print(uses)


# --- main ---------------------------------------------------------------------------------


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each cell")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")],
                        default=list(CONNECTIONS), help="comma-separated, e.g. 1,8,32")  # fmt: skip
    parser.add_argument("--targets", type=lambda s: [x for x in s.split(",") if x],
                        default=list(TARGETS),
                        help="comma-separated, of " + ",".join(TARGETS))  # fmt: skip
    parser.add_argument("--uses", type=lambda s: [int(x) for x in s.split(",") if x],
                        default=list(EARLIER_USES),
                        help="earlier uses to time, e.g. 0,10000; '' for none")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every target and print the tables; skipped targets are said so."""
    args = _arguments(argv)
    connections, seconds = args.connections, args.seconds
    results: dict[str, dict[int, Cell]] = {}
    runs: dict[str, GatewayRun] = {}
    body: bytes | None = None
    with tempfile.TemporaryDirectory(prefix="sluis-bench-") as tmp:
        home = Path(tmp)
        write_csv(home / "sensors.csv")
        # one consumer per connection, plus one kept fresh for the earlier-uses table
        world = World(home, consumer_ids(max(connections) + 1))
        for name, store in (("(a) gateway, SQLite", "sqlite"), ("(b) gateway, PostgreSQL", "pg")):
            if ("sqlite" if store == "sqlite" else "postgresql") not in args.targets:
                continue
            try:
                with _store(world, store) as url:
                    runs[name], body = run_gateway(world, url, connections, seconds, args.uses)
                    results[name] = runs[name].cells
            except RuntimeError as exc:
                print(f"skipped {name}: {exc}")
        body_path = home / "body.csv"
        body_path.write_bytes(body if body is not None else (home / "sensors.csv").read_bytes())
        for name, runner, target in (("(c) bare FastAPI", run_bare, "bare"),
                                     ("(d) nginx mTLS proxy", run_nginx, "nginx")):  # fmt: skip
            if target not in args.targets:
                continue
            try:
                results[name] = runner(world, body_path, connections, seconds)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"skipped {name}: {exc}")
    print_main(results, connections, seconds)
    print_gateways(runs, max(connections))
    print(
        f"response {len(body or b'')} bytes; python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )


@contextmanager
def _store(world: World, store: str) -> Iterator[str]:
    if store == "sqlite":
        yield world.sqlite_url()
    else:
        with _postgres() as url:
            yield url


if __name__ == "__main__":
    main()
