"""State shared by the CLI's commands (the global --config option)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.settings import Settings, load_settings


@dataclass
class CliState:
    """What the top-level callback collected."""

    config: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        """Settings from the environment, the --config file and ``overrides``."""
        return load_settings(self.config, **overrides)
