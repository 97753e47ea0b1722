"""Peak memory of the gateway streaming a file of at least 1 GB, in every output format.

Run by hand: ``python -m bench.memory [size_gb] [--before DIR] [--file CSV] [--only TEXT]``
(several minutes; nothing else should run). ``--file CSV`` reuses a CSV made earlier by
``bench.files_connector.generate`` (linked, or copied, into the run's directory) instead of
writing a new one; ``--only TEXT`` runs only the cases whose name contains ``TEXT`` (or one
of several, comma-separated: ``--only csv,arrow``).
``--before DIR`` also runs each case on the code in ``DIR`` (another checkout of
this project, e.g. ``git archive main | tar -x -C DIR``; its server runs with ``DIR`` first
on ``PYTHONPATH``), alternating with the current code case by case, so one run gives before,
after and the baseline on the same file under the same load.

A CSV is generated in a temporary directory (removed afterwards; skipped when the disk is
short). The real gateway runs as ``sluis serve`` in its own process; each case gets a fresh
server, whose peak RSS (``VmHWM``) is read after the request, so each row is the server's
own peak for that request. curl streams the body over mTLS into /dev/null.

The baseline, per format, is pyarrow reading the same file and encoding the same columns
with the same writer (JSON lines: the gateway's encoder, pyarrow has none) in a child
process of its own, in the same run. Ordering (no limit) and grouping by a unique column run
through the gateway, each code with its own default ``spill_memory_limit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import ipc
from rich.console import Console
from rich.table import Table

import certs
from bench.exchange import CONSUMER, PROVIDER, RESEARCH
from bench.files_connector import generate
from connectors.formats import _jsonl  # the gateway's own JSON lines encoder
from gateway.background import free_port
from gateway.client import SluisClient
from gateway.datasets.factory import create_connector
from gateway.datasets.schemas import DatasetSpec
from gateway.datasets.service import DatasetService
from gateway.oauth.clients import ClientService
from gateway.oauth.schemas import ClientCreate
from gateway.participants.schemas import ParticipantCreate
from gateway.participants.service import ParticipantService
from gateway.storage.db import Database

MiB = 1 << 20
CURL = shutil.which("curl") or "curl"
Row = tuple[str, str, float, int, int, int, int | None, float | None, int | None]
COLUMNS = ["id", "region", "amount", "note"]
POLICY = f"""
uid: urn:sluis:policy:memory
type: Offer
target: urn:sluis:dataset:big
prefixes: {{dpv: "https://w3id.org/dpv#"}}
permissions:
  - action: read
    assignee: urn:sluis:participant:{CONSUMER}
    constraints: [[purpose, isAnyOf, [dpv:AcademicResearch]]]
    data: {{columns: [{", ".join(COLUMNS)}]}}
"""
FORMATS = ("csv", "arrow", "parquet", "jsonl")
HEAVY = {
    "order by amount, no limit (id, amount)": {
        "columns": ["id", "amount"], "order_by": [{"column": "amount", "descending": True}],
    },
    "group by id (one group per row), sum(amount)": {
        "group_by": ["id"], "aggregates": [{"func": "sum", "column": "amount"}],
    },
}  # fmt: skip


class _Null:
    """A write-only sink that counts."""

    closed = False

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        return None


def _baseline(path: str, fmt: str) -> tuple[float, int]:
    started = time.perf_counter()
    dataset = ds.dataset(path, format=ds.CsvFileFormat())
    sink = _Null()
    writers = {"csv": pacsv.CSVWriter, "parquet": pq.ParquetWriter, "arrow": ipc.new_stream}
    writer = writers[fmt](sink, dataset.schema) if fmt in writers else None
    for batch in dataset.to_batches(columns=COLUMNS, batch_size=64 * 1024):
        if writer is None:
            sink.write(_jsonl(batch))
        else:
            writer.write_batch(batch)
    if writer is not None:
        writer.close()
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def baseline(path: Path, fmt: str) -> tuple[float, int]:
    """(seconds, peak RSS KiB) of pyarrow reading and encoding ``path``, in a fresh process."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_baseline, str(path), fmt).result()


async def _register(home: Path, now: datetime) -> None:
    db = Database(f"sqlite+aiosqlite:///{home / 'sluis.db'}")
    await db.upgrade()
    participants = ParticipantService(db)
    for pid, name, role in ((PROVIDER, "Maker", "provider"), (CONSUMER, "Uni", "consumer")):
        await participants.create(ParticipantCreate(id=pid, name=name, roles=[role]), now=now)
    connector = {"type": "files", "root": str(home), "path": "data.csv", "format": "csv"}
    spec = DatasetSpec(id="big", title="Big", provider=PROVIDER, policy="inline",
                       approval="automatic", connector=connector)  # fmt: skip
    await DatasetService(db, create_connector).register(spec, POLICY, "yaml", now=now)
    client = ClientCreate(client_id=CONSUMER, auth_method="tls_client_auth", scopes=["dataset:big"])
    await ClientService(db).create(client, now=now)
    await db.dispose()


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _through(
    client: SluisClient, issued: Any, bundle: Path, url: str, body: dict[str, Any]
) -> tuple[float, int, int]:
    """(seconds, bytes, status) of one query, streamed by curl to /dev/null (a C client, so
    the client's own speed does not cap the figure)."""
    client._ensure_token()  # the SDK's OAuth session: a token bound to this certificate
    token = client._oauth.token["access_token"]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - fixed arguments, our own request
        [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
         "--cacert", str(bundle), "--cert", str(issued.certificate_path),
         "--key", str(issued.key_path), "-H", f"Authorization: Bearer {token}",
         "-H", "Content-Type: application/json", "--data-binary", json.dumps(body),
         f"{url}/v1/datasets/big/query"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    status, size = done.stdout.split()
    return time.perf_counter() - started, int(size), int(status)


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description="Peak memory and throughput of a >= 1 GB file through the gateway.",
    )
    parser.add_argument("size_gb", nargs="?", type=float, default=1.05, help="CSV size (GB)")
    parser.add_argument("--before", type=Path, help="another checkout to run case by case")
    parser.add_argument("--file", type=Path, help="reuse this CSV instead of writing one")
    parser.add_argument("--only", default="", help="cases whose name contains TEXT[,TEXT]")
    arguments = parser.parse_args(argv)
    if arguments.size_gb <= 0:
        parser.error("size_gb must be positive")
    return arguments


def main() -> None:
    arguments = _arguments()
    size_gb, only = arguments.size_gb, arguments.only
    before, reuse = arguments.before, arguments.file
    root = Path(tempfile.mkdtemp(prefix="sluis-bench-memory-"))
    try:
        if shutil.disk_usage(root).free < size_gb * 4 * 1024**3:
            print(f"skipped: {root} has less than {4 * size_gb:.1f} GiB free")
            return
        rows = _data(root / "data.csv", size_gb, reuse)
        _run(root, rows, None if before is None else before.resolve(), only)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _data(path: Path, size_gb: float, reuse: Path | None) -> int:
    """Make the CSV at ``path`` (or bring ``reuse`` there): its number of rows."""
    if reuse is None:
        return generate(path, int(size_gb * 1024**3))
    try:
        os.link(reuse, path)
    except OSError:  # another file system
        shutil.copyfile(reuse, path)
    with path.open("rb") as data:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: data.read(MiB), b"")) - 1


def _run(home: Path, rows: int, before: Path | None, only: str) -> None:
    size = (home / "data.csv").stat().st_size
    now = datetime.now(UTC)
    ca = certs.CADirectory.init(home / "pki", name="Bench", key_type="ec-p256", now=now)
    issued = ca.issue(organization_id=CONSUMER, organization_name="Uni", roles=["consumer"],
                      now=now, out_dir=home / "client")  # fmt: skip
    assert issued.key_path is not None
    asyncio.run(_register(home, now))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUIS_", "OTEL_"))}
    env.update({
        "SLUIS_HOME": str(home), "SLUIS_INSECURE_DEV_MODE": "true",
        "SLUIS_TLS_CERT": str(ca.server_cert_path), "SLUIS_TLS_KEY": str(ca.server_key_path),
        "SLUIS_TLS_CLIENT_CA": str(ca.trust_bundle_path), "SLUIS_TLS_CRL": str(ca.crl_path),
    })  # fmt: skip  # each code with its own default spill_memory_limit
    # The server runs outside this checkout (cwd): without this, an editable install would
    # serve the checkout it was installed from, not the one measured (a worktree's, say).
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cases = [(f"format={f}", {"columns": COLUMNS, "format": f}, f) for f in FORMATS]
    cases += [(name, {**body, "format": "arrow"}, None) for name, body in HEAVY.items()]
    cases = [case for case in cases if any(part in case[0] for part in only.split(","))]
    codes = [("current", env)]
    if before is not None:
        path = os.pathsep.join([str(before), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        codes.insert(0, ("before", {**env, "PYTHONPATH": path}))
    results: list[Row] = []
    agreed = False
    for name, body, fmt in cases:
        base = baseline(home / "data.csv", fmt) if fmt else (None, None)
        for code, code_env in codes:
            seconds, out, idle, peak, engine = _case(code_env, ca, issued, body, agree=not agreed)
            agreed = True
            results.append((name, code, seconds, out, idle, peak, engine, *base))
            apart = "-" if engine is None else f"{engine / MiB:,.0f} MiB"
            print(f"{name} ({code}): {seconds:.1f} s, peak {peak / MiB:,.0f} MiB, engine {apart}",
                  file=sys.stderr)  # fmt: skip
    _print(results, size, rows)


def _case(
    env: dict[str, str], ca: Any, issued: Any, body: dict[str, Any], *, agree: bool
) -> tuple[float, int, int, int, int | None]:
    """(seconds, bytes out, server idle RSS, server peak RSS, the ordering/grouping engine's
    own peak RSS when it ran in a process of its own) of one query on a fresh server."""
    name = body.get("format", "")
    log = Path(ca.trust_bundle_path).parent / "server.log"
    with _server(env, ca.trust_bundle_path, log) as (url, pid):
        idle = _status(pid, "VmRSS")
        with SluisClient(
            url, ca_bundle=ca.trust_bundle_path, cert_file=issued.certificate_path,
            key_file=issued.key_path, client_id=CONSUMER,
        ) as client:  # fmt: skip
            if agree:
                client.request_agreement("big", purpose=RESEARCH)
            seconds, out, status = _through(client, issued, ca.trust_bundle_path, url, body)
        assert status == 200, f"{name}: HTTP {status}"
        peak = _status(pid, "VmHWM")
    return seconds, out, idle, peak, _engine_peak(log)


# ``sluis serve`` as the console script runs it, with the spill module's INFO lines (the
# ordering/grouping engine's peak RSS, when it runs in a process of its own) on stderr.
SERVE = """
import logging, sys
handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter("%(name)s %(engine_peak)s"))
handler.addFilter(lambda record: hasattr(record, "engine_peak"))
spill = logging.getLogger("sluis.spill")
spill.addHandler(handler)
spill.setLevel(logging.INFO)
from gateway.cli.main import run
sys.argv = ["sluis", *sys.argv[1:]]
run()
"""


@contextmanager
def _server(env: dict[str, str], bundle: Path, log: Path) -> Iterator[tuple[str, int]]:
    """A fresh ``sluis serve`` (so its peak RSS is this case's alone): (url, pid)."""
    port = free_port()
    with log.open("wb") as errors:
        server = subprocess.Popen(  # noqa: S603 - our own gateway, fixed arguments
            [sys.executable, "-c", SERVE, "serve", "--insecure-dev", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=log.parent,
        )  # fmt: skip  # cwd: not this checkout, so --before's PYTHONPATH comes first
    url = f"https://127.0.0.1:{port}"
    try:
        _wait(url, bundle)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _engine_peak(log: Path) -> int | None:
    """The largest engine peak RSS the server logged, if any engine ran in its own process."""
    peaks = [
        int(line.split()[1])
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("sluis.spill ") and line.split()[1].isdigit()
    ]
    return max(peaks, default=None)


def _wait(url: str, bundle: Path) -> None:
    context = ssl.create_default_context(cafile=str(bundle))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", verify=context, timeout=1).raise_for_status()
        except httpx.HTTPError:
            time.sleep(0.2)
        else:
            return
    raise RuntimeError("the gateway did not start")


def _print(results: list[Row], size: int, rows: int) -> None:
    title = (
        f"{size / MiB:,.0f} MiB CSV, {rows:,} rows, a fresh server per case, "
        "each code with its default spill memory limit"
    )
    table = Table(title=title)
    for column in ("case", "code", "s", "MB/s of file", "out MiB", "server idle MiB",
                   "server peak MiB", "engine process peak MiB", "pyarrow s", "pyarrow peak MiB",
                   "throughput vs pyarrow"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("case", "code") else "right")
    for name, code, seconds, out, idle, peak, engine, base_s, base_peak in results:
        table.add_row(
            name, code, f"{seconds:.1f}", f"{size / 1e6 / seconds:,.0f}", f"{out / MiB:,.0f}",
            f"{idle / MiB:,.0f}", f"{peak / MiB:,.0f}",
            "-" if engine is None else f"{engine / MiB:,.0f}",
            "-" if base_s is None else f"{base_s:.1f}",
            "-" if base_peak is None else f"{base_peak / 1024:,.0f}",
            "-" if base_s is None else f"{base_s / seconds:.0%}",
        )  # fmt: skip
    Console(width=190).print(table)


if __name__ == "__main__":
    main()
