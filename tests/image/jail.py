"""Run one command in an image's root the way a container runtime would, read-only.

Started by :func:`tests.image.runner.jail_argv` as ``unshare --mount --propagation private
python -m tests.image.jail SPEC``, so every mount below lives in a private mount namespace
and disappears with the process. As root it bind-mounts the image's root onto itself
read-only, puts a fresh ``/proc``, a minimal ``/dev`` and the tmpfs mounts in place, binds
the given host paths read-only (a Secret volume), then chroots, changes to the working
directory, drops to the image's user and groups and execs the command: no shell, nothing of
this machine's Python inside. Network: the host's (loopback is shared with the test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEVICES = ("null", "zero", "random", "urandom")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _bind_read_only(source: str, target: Path) -> None:
    _mount("--bind", source, str(target))
    _mount("-o", "remount,bind,ro,nosuid,nodev", str(target))


def prepare(root: Path, tmpfs: list[str], binds: dict[str, str]) -> None:
    """The mounts of one run, inside the private mount namespace."""
    _bind_read_only(str(root), root)
    _mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(root / "proc"))
    _mount("-t", "tmpfs", "-o", "nosuid,noexec,mode=755,size=1m", "tmpfs", str(root / "dev"))
    for device in DEVICES:
        (root / "dev" / device).touch()
        _mount("--bind", f"/dev/{device}", str(root / "dev" / device))
    for path in tmpfs:
        _mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=1777,size=256m", "tmpfs", f"{root}{path}")
    for target, source in binds.items():  # targets lie under a tmpfs: made here
        mount_point = Path(f"{root}{target}")
        mount_point.mkdir(parents=True, exist_ok=True)
        _bind_read_only(source, mount_point)


def main(spec_json: str) -> None:
    """Prepare, enter and exec; see the module docstring. Never returns."""
    spec = json.loads(spec_json)
    root = Path(spec["root"])
    prepare(root, spec["tmpfs"], spec["binds"])
    os.chroot(root)
    os.chdir(spec["workdir"])
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.execve(spec["argv"][0], spec["argv"], spec["env"])  # noqa: S606 - the image's own program


if __name__ == "__main__":
    main(sys.argv[1])
