"""The built image, opened and run read-only as its own user (see :mod:`tests.image.jail`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.image.build import BUILDAH


@dataclass(frozen=True)
class Image:
    """An image's root (mounted from a buildah container) and its configuration."""

    name: str
    root: Path
    config: dict[str, Any]  # Docker image config: User, Env, WorkingDir, Entrypoint, ...
    labels: dict[str, str]

    @property
    def user(self) -> tuple[int, int]:
        uid, _, gid = str(self.config["User"]).partition(":")
        return int(uid), int(gid or uid)

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config.get("Env") or [])

    def argv(self, *args: str) -> list[str]:
        """The entry point with ``args`` (the image's CMD when none)."""
        return [*self.config["Entrypoint"], *(args or self.config.get("Cmd") or [])]

    def jail_argv(
        self,
        argv: Sequence[str],
        *,
        tmpfs: Sequence[str] = ("/tmp", "/run"),  # noqa: S108 - paths inside the image
        binds: Mapping[str, Path] | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        groups: Sequence[int] | None = None,
    ) -> list[str]:
        """The command that runs ``argv`` in the image: read-only root, the image's user.

        ``groups`` are the supplementary groups (a pod's fsGroup); default the user's group.
        """
        uid, gid = self.user
        spec = {
            "root": str(self.root),
            "tmpfs": list(tmpfs),
            "binds": {target: str(source) for target, source in (binds or {}).items()},
            "workdir": workdir or self.config.get("WorkingDir") or "/",
            "uid": uid,
            "gid": gid,
            "groups": list(groups if groups is not None else [gid]),
            "env": {**self.env, **(env or {})},
            "argv": list(argv),
        }
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-m",
            "tests.image.jail",
            json.dumps(spec),
        ]


def _buildah(*args: str) -> str:
    done = subprocess.run([*BUILDAH, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextmanager
def opened(name: str) -> Iterator[Image]:
    """A working container of image ``name``, mounted; removed afterwards."""
    info = json.loads(_buildah("inspect", "--type", "image", name))
    config = info["Docker"]["config"]
    container = _buildah("from", "--pull=never", "--quiet", name)
    try:
        root = Path(_buildah("mount", container))
        yield Image(name, root, config, dict(config.get("Labels") or {}))
    finally:
        _buildah("rm", container)
