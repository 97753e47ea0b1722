"""Demo step 10: the security officer verifies the audit log offline, and catches a forgery."""

from __future__ import annotations

import json
import shutil
import subprocess

from gateway.background import SLUIS
from gateway.demo.common import HOME, console, sluis, step


def verify(env: dict[str, str]) -> bool:
    """Export, verify with the public key only, tamper with a copy, verify again."""
    step("10. The officer exports the audit log and verifies it with the public key only")
    export = HOME / "audit-export"
    sluis("audit", "export", "--dir", str(export), env=env)
    key = sluis("audit", "key", env=env).strip()
    console.print(f"audit public key: {key}")
    passed = sluis("audit", "verify", str(export), "--key", key, env=env)
    console.print(passed.strip())
    tampered = HOME / "audit-tampered"
    shutil.copytree(export, tampered)
    entries = tampered / "entries.jsonl"
    lines = entries.read_text().splitlines()
    record = json.loads(lines[-3])
    record["entry"]["rows"] = 0 if record["entry"].get("rows") else 999
    lines[-3] = json.dumps(record)
    entries.write_text("\n".join(lines) + "\n")
    console.print("a copy with one entry changed (rows delivered) ...")
    forged = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [SLUIS, "audit", "verify", str(tampered), "--key", key],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    console.print(f"... verify exits {forged.returncode}: {forged.stderr.strip()}")
    return forged.returncode != 0
