"""``make image``: the Sluis image, built here with buildah, no container registry needed.

1. Base: a Debian bookworm root made with ``mmdebstrap`` (variant minbase, ``python3`` and
   ``python3-venv`` from Debian), imported as ``localhost/sluis-base:<recipe hash>``; the
   runtime base is the same root without any shell (``localhost/sluis-base-runtime``).
   Both are kept in buildah's storage and reused while the recipe below is unchanged.
2. Wheels: ``pip wheel`` of the project (runtime dependencies only) on this machine, with
   pip as configured here; the build itself then needs no network (``--no-index``).
3. ``buildah build`` of the Containerfile, tagged ``localhost/sluis:<version>`` and
   ``localhost/sluis:<version>-<content hash>``. The content hash covers the Containerfile,
   the bases and every source file of the wheel: when an image with that tag exists, it is
   reused and nothing is built (``--rebuild`` builds anyway).

Needs root, ``buildah`` and ``mmdebstrap`` (Debian packages). Prints the image name, then a
table of how long each step took. Exits non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "localhost/sluis"
BASE = "localhost/sluis-base"
RUNTIME_BASE = "localhost/sluis-base-runtime"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv")
# usr-merged: /bin is a link to usr/bin. Nothing in the image needs a shell at run time.
SHELLS = ("usr/bin/sh", "usr/bin/bash", "usr/bin/dash", "usr/bin/rbash")
# What the wheel and the image are made of: a change to any of these makes a new image.
SOURCES = ("Containerfile", "pyproject.toml", "gateway", "policies", "connectors", "certs")
BUILDAH = ("buildah", "--storage-driver", os.environ.get("SLUIS_IMAGE_STORAGE", "overlay"))


class BuildError(Exception):
    """A step of the build failed; the message is the one-line reason."""


def missing_tools() -> str | None:
    """Why the image cannot be built on this machine, or None."""
    if os.geteuid() != 0:
        return "building the image needs root (buildah with chroot isolation, mmdebstrap)"
    absent = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (apt-get install buildah mmdebstrap)"
    return None


@dataclass
class Timings:
    """How long each step took, for the table ``make image`` prints."""

    rows: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.rows.append((name, time.monotonic() - started))

    def table(self) -> str:
        lines = [f"{'step':<34} {'seconds':>8}"]
        lines += [f"{name:<34} {seconds:>8.1f}" for name, seconds in self.rows]
        lines.append(f"{'total':<34} {sum(s for _, s in self.rows):>8.1f}")
        return "\n".join(lines)


def _run(*argv: str, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise BuildError(f"{' '.join(argv[:3])} failed ({done.returncode}): {last}")
    return done.stdout.strip()


def image_exists(name: str) -> bool:
    """Whether buildah's storage holds an image called ``name``."""
    done = subprocess.run(
        [*BUILDAH, "inspect", "--type", "image", name], capture_output=True, check=False
    )
    return done.returncode == 0


def image_id(name: str) -> str:
    return str(json.loads(_run(*BUILDAH, "inspect", "--type", "image", name))["FromImageID"])


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:16]


def mmdebstrap_argv(target: Path) -> list[str]:
    """The base root's recipe: docs, man pages and translations left out."""
    excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")]
    return [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        *excludes,
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        SUITE,
        str(target),
        MIRROR,
    ]


def ensure_bases(timings: Timings) -> tuple[str, str]:
    """``(build base, runtime base)`` image names, made now unless already in storage."""
    recipe = _digest(json.dumps([mmdebstrap_argv(Path("-")), SHELLS]).encode())
    base, runtime = f"{BASE}:{recipe}", f"{RUNTIME_BASE}:{recipe}"
    if image_exists(base) and image_exists(runtime):
        return base, runtime
    with tempfile.TemporaryDirectory(prefix="sluis-base-") as scratch:
        tarball = Path(scratch) / "root.tar"
        with timings.step("mmdebstrap (Debian root)"):
            _run(*mmdebstrap_argv(tarball))
        with timings.step("import bases"):
            _commit_root(tarball, base, remove=())
            _commit_root(tarball, runtime, remove=SHELLS)
    return base, runtime


def _commit_root(tarball: Path, name: str, *, remove: tuple[str, ...]) -> None:
    container = _run(*BUILDAH, "from", "scratch")
    try:
        _run(*BUILDAH, "add", "--quiet", container, str(tarball), "/")
        if remove:
            mounted = Path(_run(*BUILDAH, "mount", container))
            for path in remove:
                (mounted / path).unlink(missing_ok=True)
            _run(*BUILDAH, "umount", container)
        env = "PATH=/usr/local/bin:/usr/bin:/bin"
        _run(*BUILDAH, "config", "--env", env, "--cmd", "/usr/bin/python3", container)
        _run(*BUILDAH, "commit", "--quiet", container, name)
    finally:
        _run(*BUILDAH, "rm", container)


def source_hash(*inputs: str) -> str:
    """Hash of every file under :data:`SOURCES` (caches and bytecode left out) and ``inputs``."""
    parts: list[bytes] = [part.encode() for part in inputs]
    for source in SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                parts += [str(file.relative_to(ROOT)).encode(), file.read_bytes()]
    return _digest(*parts)


def version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise BuildError("pyproject.toml has no version line")


def _revision() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def ensure_image(*, rebuild: bool = False, timings: Timings | None = None) -> str:
    """The image's name (``localhost/sluis:<version>-<hash>``), built unless already there."""
    timings = timings or Timings()
    reason = missing_tools()
    if reason is not None:
        raise BuildError(reason)
    base, runtime = ensure_bases(timings)
    release = version()
    tag = f"{release}-{source_hash(image_id(base), image_id(runtime))}"
    name = f"{REPOSITORY}:{tag}"
    if image_exists(name) and not rebuild:
        return name
    with tempfile.TemporaryDirectory(prefix="sluis-image-") as scratch:
        context = Path(scratch)
        with timings.step("pip wheel (sluis + dependencies)"):
            _run(
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--wheel-dir",
                str(context / "wheels"),
                str(ROOT),
            )
        shutil.copy(ROOT / "Containerfile", context / "Containerfile")
        with timings.step("buildah build"):
            _build(context, name, base, runtime, release)
    _run(*BUILDAH, "tag", name, f"{REPOSITORY}:{release}")
    return name


def _build(context: Path, name: str, base: str, runtime: str, release: str) -> None:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    arguments = {
        "BASE_IMAGE": base,
        "RUNTIME_IMAGE": runtime,
        "BASE_NAME": f"debian:{SUITE} (mmdebstrap minbase + {' '.join(PACKAGES)})",
        "SLUIS_VERSION": release,
        "REVISION": _revision(),
        "CREATED": created,
    }
    build_args = [f"--build-arg={key}={value}" for key, value in arguments.items()]
    _run(
        *BUILDAH,
        "build",
        "--quiet",
        "--isolation",
        "chroot",
        "--pull=never",  # the bases are local; a value needs "=" (an optional-value flag)
        "--format",
        "docker",  # HEALTHCHECK is kept in Docker's image format only
        *build_args,
        "--file",
        str(context / "Containerfile"),
        "--tag",
        name,
        str(context),
    )


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the image; print its name and the step timings."""
    parser = argparse.ArgumentParser(prog="python -m tests.image.build", description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="build even if cached")
    args = parser.parse_args(argv)
    timings = Timings()
    try:
        name = ensure_image(rebuild=args.rebuild, timings=timings)
    except BuildError as exc:
        print(f"make image: {exc}", file=sys.stderr)
        return 1
    print(name)
    print(timings.table() if timings.rows else "(cached: nothing built)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
