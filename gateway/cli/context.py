"""State shared by the CLI's commands (the global --config option)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.cli.output import CliError
from gateway.settings import Settings, load_settings

S = TypeVar("S")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass
class CliState:
    """What the top-level callback collected."""

    config: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        """Settings from the environment, the --config file and ``overrides``."""
        return load_settings(self.config, **overrides)


def run_with_service(
    settings: Settings,
    make: Callable[[Any], S],
    action: Callable[[S], Awaitable[T]],
) -> T:
    """Open the database (migrating it when auto_migrate), run ``action`` on a service, close."""

    from gateway.storage.db import Database  # noqa: PLC0415 - SQLAlchemy only when needed

    async def main() -> T:
        db = Database(settings.effective_database_url)
        try:
            if settings.auto_migrate:
                await db.upgrade()
            return await action(make(db))
        finally:
            await db.dispose()

    return asyncio.run(main())


def validated(model: type[M], **data: Any) -> M:
    """``model`` built from ``data``; CliError naming the first bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or model.__name__
        raise CliError(f"{where}: {first['msg']}") from exc
