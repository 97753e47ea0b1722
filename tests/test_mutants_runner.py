"""``make mutants``' runner: a mutant whose tests fail is killed; one whose tests pass
survived; one whose tests were all skipped (no ``../shared`` beside a clone, say) is named as
not run, with the skip's reason, not reported as a surviving bug; a property test's random
draws do not count as a kill."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutants.__main__ import Mutant, _run_one

CODE = "def guarded(x):\n    return x > 0\n"
TESTS = {
    "checks": "from code import guarded\n\ndef test_it():\n    assert not guarded(0)\n",
    "misses": "from code import guarded\n\ndef test_it():\n    assert guarded(1)\n",
    "draws": "from hypothesis import given, strategies as st\nfrom code import guarded\n\n"
    "def test_plain():\n    assert guarded(1)\n\n"
    "@given(st.integers())\ndef test_property(x):\n    assert guarded(x) == (x > 0)\n",
    "skips": "import pytest\n\n@pytest.mark.skip(reason='no vectors here')\ndef test_it():\n"
    "    pass\n",
}


@pytest.mark.parametrize(
    ("tests", "verdict"),
    [
        ("checks", "killed   off-by-one"),
        ("misses", "SURVIVED off-by-one: x > 0 holds"),
        ("draws", "SURVIVED off-by-one: x > 0 holds"),
        ("skips", "NOT RUN  off-by-one: its tests were skipped (no vectors here)"),
    ],
)
def test_a_mutants_verdict(tmp_path: Path, tests: str, verdict: str) -> None:
    (tmp_path / "code.py").write_text(CODE)
    (tmp_path / f"test_{tests}.py").write_text(TESTS[tests])
    mutant = Mutant(
        name="off-by-one", guarantee="x > 0 holds", file="code.py",
        find="x > 0", replace="x >= 0", tests=(f"test_{tests}.py",),
    )  # fmt: skip
    assert _run_one(tmp_path, mutant) == verdict
    assert (tmp_path / "code.py").read_text() == CODE  # restored
