"""Where the shared ODRL conformance vectors live, and their case lists (read, never copied).

They live in ``../shared/vectors/odrl`` beside the checkout (``tests.support.shared``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.shared import VECTORS

ODRL = VECTORS / "odrl"
SOLIDLAB = ODRL / "SolidLabResearch__ODRL-Test-Suite"
PURPOSE = ODRL / "SolidLabResearch__ODRL-Evaluator__newTestCases"
W3C = ODRL / "w3c__odrl" / "formal-semantics" / "examples"
ABSENT = pytest.param(None, marks=pytest.mark.skip(reason=f"ODRL vectors not present at {ODRL}"))


def _cases(manifest: Path, key: str) -> list[Any]:
    if not manifest.is_file():
        return [ABSENT]
    cases = json.loads(manifest.read_text())["cases"]
    return [pytest.param(c, id=str(c[key])) for c in cases]


def solidlab_cases() -> list[Any]:
    """The 68 SolidLab cases, by slug."""
    return _cases(SOLIDLAB / "allow_deny_manifest.derived.json", "slug")


def purpose_cases() -> list[Any]:
    """The 9 SolidLab ODRL-Evaluator purpose / xsd:date cases, by number."""
    return _cases(PURPOSE / "manifest.json", "n")


def w3c_cases() -> list[Any]:
    """The 9 W3C Formal Semantics examples, by folder name (A11 ... C23)."""
    if not W3C.is_dir():
        return [ABSENT]
    found = sorted(W3C.rglob("evaluationrequest*.json"))
    return [pytest.param(path.parent, id=path.parent.name) for path in found]
