"""``make mutants``: apply each guarantee mutant to a scratch copy and run the tests that kill it.

Each mutant in ``mutants.toml`` names a guarantee, one exact snippet in one file, its
replacement (a small, deliberate bug) and the tests that must fail with it. For each mutant
the runner copies the working tree once, applies the mutant (the snippet must occur exactly
once: when the code moves, the list must move with it, so a stale entry fails too), runs the
named tests with ``pytest -x`` and restores the file. It exits non-zero when any mutant
survives (its tests pass), when a snippet is missing or ambiguous, or when the tests of an
unmutated tree fail.

    python -m tests.mutants                 # every mutant
    python -m tests.mutants binding crl     # only these
    python -m tests.mutants --list
    python -m tests.mutants --jobs 1        # one at a time (default: 2, each in its own copy)
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIST = Path(__file__).with_name("mutants.toml")
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "__pycache__",
    ".sluis",
)  # fmt: skip
TIMEOUT = 600  # seconds for one mutant's tests: a hang counts as killed only if it ends


@dataclass(frozen=True)
class Mutant:
    name: str
    guarantee: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]


def load(path: Path = LIST) -> list[Mutant]:
    """The mutants listed in ``path``; names unique, every field present."""
    data = tomllib.loads(path.read_text())
    mutants = [
        Mutant(
            name=m["name"],
            guarantee=m["guarantee"],
            file=m["file"],
            find=m["find"],
            replace=m["replace"],
            tests=tuple(m["tests"]),
        )
        for m in data["mutant"]
    ]
    names = [m.name for m in mutants]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"mutants.toml: duplicate names {sorted(duplicates)}")
    return mutants


def _pytest(
    tree: Path, tests: tuple[str, ...], *, workers: int = 0
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(tree), SLUIS_SHARED=str(REPO.parent / "shared"))
    # Hypothesis's property tests are left out: a mutant must be killed by a test that fails
    # every time, not by a random draw that may miss it (one did, in CI).
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rs", "-p", "no:cacheprovider"]
    command += ["-m", "not hypothesis", *tests]
    if workers > 1:  # the baseline: every mutant's tests at once, on the cores the jobs use
        command[3:3] = ["-n", str(workers)]
    return subprocess.run(
        command, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _apply(tree: Path, mutant: Mutant) -> str:
    """Apply ``mutant`` in ``tree``; return the original text of its file."""
    path = tree / mutant.file
    original = path.read_text()
    count = original.count(mutant.find)
    if count != 1:
        raise LookupError(f"snippet found {count} times in {mutant.file} (must be exactly once)")
    path.write_text(original.replace(mutant.find, mutant.replace))
    return original


def _run_one(tree: Path, mutant: Mutant) -> str:
    try:
        original = _apply(tree, mutant)
    except (LookupError, FileNotFoundError) as exc:
        return f"STALE    {mutant.name}: {exc}"
    try:
        result = _pytest(tree, mutant.tests)
    except subprocess.TimeoutExpired:
        return f"killed   {mutant.name} (its tests hung past {TIMEOUT} s)"
    finally:
        (tree / mutant.file).write_text(original)
    if result.returncode == 0:
        return _survived(mutant, result.stdout)
    if result.returncode != 1:  # 1 = tests failed; anything else is a broken run
        tail = result.stdout.strip().splitlines()[-3:]
        return f"ERROR    {mutant.name}: pytest exited {result.returncode}: {' | '.join(tail)}"
    return f"killed   {mutant.name}"


def _survived(mutant: Mutant, output: str) -> str:
    """A mutant's tests passed: say so, and when they were skipped, why (a missing ``../shared``
    or server skips the tests that would kill it; that is not a surviving bug)."""
    lines = output.splitlines()
    reasons = [line.split(": ", 1)[-1] for line in lines if line.startswith("SKIPPED")]
    if not reasons:
        return f"SURVIVED {mutant.name}: {mutant.guarantee}"
    if re.search(r"\b[1-9]\d* passed", output) is None:
        return f"NOT RUN  {mutant.name}: its tests were skipped ({reasons[0]})"
    return f"SURVIVED {mutant.name}: {mutant.guarantee} (some tests skipped: {reasons[0]})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__)
    parser.add_argument("names", nargs="*", help="only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    args = parser.parse_args(argv)
    mutants = load()
    if args.list:
        for m in mutants:
            print(f"{m.name:28} {m.file}: {m.guarantee}")
        return 0
    unknown = set(args.names) - {m.name for m in mutants}
    if unknown:
        print(f"unknown mutants: {sorted(unknown)}", file=sys.stderr)
        return 2
    chosen = [m for m in mutants if not args.names or m.name in args.names]
    jobs = max(1, min(args.jobs, len(chosen)))
    with tempfile.TemporaryDirectory(prefix="sluis-mutants-") as scratch:
        trees: queue.SimpleQueue[Path] = queue.SimpleQueue()
        for number in range(jobs):  # one copy per job: a mutant is applied to its own tree
            tree = Path(scratch) / f"tree{number}"
            shutil.copytree(REPO, tree, ignore=IGNORE)
            trees.put(tree)
        every_test = tuple(sorted({t for m in chosen for t in m.tests}))
        baseline = _pytest(tree, every_test, workers=jobs)
        if baseline.returncode != 0:
            print(baseline.stdout[-3000:])
            print("the unmutated tree fails the mutants' tests: fix that first", file=sys.stderr)
            return 1

        def run(mutant: Mutant) -> str:
            tree = trees.get()
            try:
                line = _run_one(tree, mutant)
            finally:
                trees.put(tree)
            print(line, flush=True)
            return line

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            lines = list(pool.map(run, chosen))
    bad = [line for line in lines if not line.startswith("killed")]
    print(f"{len(lines) - len(bad)} killed, {len(bad)} not killed, of {len(lines)} mutants")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
