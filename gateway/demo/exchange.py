"""Demo steps 6-9: agreements and queries through the Python client (mTLS + bound tokens)."""

from __future__ import annotations

from rich.table import Table

from gateway.client import SluisClient, SluisError
from gateway.demo.common import MAKER, PKI, UNIVERSITY, Org, console, step
from gateway.demo.provider import RESEARCH

MARKETING = "https://w3id.org/dpv#Marketing"


def client(url: str, org: Org) -> SluisClient:
    """The SDK session of ``org``."""
    return SluisClient(
        url,
        ca_bundle=PKI / "trust-bundle.pem",
        cert_file=org.cert,
        key_file=org.private_key,
        client_id=org.org_id,
    )


def _show(table_name: str, rows: list[dict[str, object]], limit: int = 4) -> None:
    if not rows:
        console.print(f"{table_name}: no rows")
        return
    table = Table(*rows[0].keys(), title=table_name)
    for row in rows[:limit]:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def agreements(url: str) -> bool:
    """A refused and a granted agreement."""
    step("6. The university asks for access; the policy decides, the maker approves")
    with client(url, UNIVERSITY) as uni, client(url, MAKER) as maker:
        wrong = uni.request_agreement("spindle-sensors", purpose=MARKETING)
        console.print(f"purpose Marketing  -> [bold]{wrong['state']}[/]: {wrong['reason']}")
        asked = uni.request_agreement("spindle-sensors", purpose=RESEARCH)
        console.print(f"purpose Research   -> [bold]{asked['state']}[/] (waits for the maker)")
        approved = maker.decide_agreement(asked["id"], "approve")
        console.print(f"the maker approves -> [bold]{approved['state']}[/]")
        auto = [uni.request_agreement(d, purpose=RESEARCH) for d in ("maintenance", "machines")]
        console.print("maintenance, machines -> " + ", ".join(a["state"] for a in auto))
    return (wrong["state"], approved["state"], *[a["state"] for a in auto]) == (
        "rejected", "active", "active", "active",
    )  # fmt: skip


def queries(url: str) -> bool:
    """Columns removed, a refused column, aggregates only, the REST API, a count running out."""
    ok = True
    with client(url, UNIVERSITY) as uni:
        step("7. A permitted query: the policy keeps the serial numbers back")
        table = uni.query("spindle-sensors", where=[("temp_c", "gt", 80.0)], limit=5)
        console.print(f"asked for every column, got: {', '.join(table.column_names)}")
        _show("spindle-sensors (temp_c > 80)", table.to_pylist())
        receipt = uni.last_receipt
        assert receipt is not None  # noqa: S101 - set by query()
        console.print(
            f"audit receipt: entry {receipt.index}, in the checkpoint of {receipt.tree_size}"
        )
        ok &= "serial" not in table.column_names
        try:
            uni.query("spindle-sensors", columns=["machine", "serial"])
            ok = False
        except SluisError as exc:
            console.print(f"asking for 'serial' -> {exc.status} {exc.type}")

        step("8. Aggregates only: maintenance jobs, never a group below 3")
        try:
            uni.query("maintenance", columns=["model", "cost_eur"])
            ok = False
        except SluisError as exc:
            console.print(f"row-level read -> {exc.status} {exc.type}")
        grouped = uni.query(
            "maintenance", group_by=["model"], aggregates=[("avg", "cost_eur"), ("count", None)]
        )
        _show("average cost per model (Z9 has 1 job: withheld)", grouped.to_pylist())
        ok &= sorted(grouped.column("model").to_pylist()) == ["X200", "X300"]
        machines = uni.query("machines", where=[("site", "eq", "Delft")])
        _show("machines in Delft (from the maker's REST API)", machines.to_pylist(), limit=3)

        step("9. The sensor agreement allows 3 requests: the 2nd and 3rd work, the 4th does not")
        outcomes = []
        for _ in range(3):
            try:
                uni.query("spindle-sensors", columns=["machine"], limit=1)
                outcomes.append("200")
            except SluisError as exc:
                outcomes.append(f"{exc.status} {exc.type}")
        console.print("requests 2, 3 and 4 -> " + " | ".join(outcomes))
        ok &= outcomes == ["200", "200", "403 policy-denied"]
    return ok
