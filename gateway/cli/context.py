"""State shared by the CLI's commands (the global --config option)."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.audit.entry import Actor
from gateway.cli.output import CliError, err_console
from gateway.settings import Settings, load_audit_key, load_settings

if TYPE_CHECKING:
    from gateway.admin.service import AdminChanges

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


def existing_database(settings: Settings) -> None:
    """CliError when the settings name a SQLite file that does not exist.

    Read-only commands call this first: run from the wrong directory or with the wrong
    SLUIS_HOME they would otherwise create an empty database and print empty tables.
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - SQLAlchemy only when needed

    url = make_url(settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not Path(url.database).exists():
        raise CliError(
            f"no database at {url.database}: set SLUIS_HOME (or SLUIS_DATABASE_URL) to the "
            "gateway's, or register something first (a read-only command creates none)"
        )


def run_with_service(
    settings: Settings,
    make: Callable[[Any], S],
    action: Callable[[S], Awaitable[T]],
) -> T:
    """Open an existing database (migrating it when auto_migrate), run ``action`` on a service.

    For read-only commands: a SQLite database that does not exist is refused, not created.
    """
    from gateway.storage.db import Database  # noqa: PLC0415 - SQLAlchemy only when needed

    existing_database(settings)

    async def main() -> T:
        db = Database(settings.effective_database_url)
        try:
            if settings.auto_migrate:
                await db.upgrade()
            return await action(make(db))
        finally:
            await db.dispose()

    return asyncio.run(main())


def cli_actor() -> Actor:
    """Who makes a change from the CLI: the local operator, ``cli:<OS user>@<host>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = f"uid-{os.getuid()}"
    return Actor(source=f"cli:{user}@{socket.gethostname()}"[:512])


def run_admin(settings: Settings, action: Callable[[AdminChanges], Awaitable[T]]) -> T:
    """Run a change of who may do what, with its audit entry in the same transaction.

    Opens the database (migrating it when auto_migrate) and the gateway's audit log, with
    the audit key and origin from ``settings`` (SettingsError without a key), for the
    duration of the command; signs a checkpoint over the new entry before closing.
    """
    # Imported here: SQLAlchemy, the policy engine and the connectors only when needed.
    from gateway.admin.service import AdminChanges  # noqa: PLC0415
    from gateway.audit.wiring import open_audit_log  # noqa: PLC0415
    from gateway.datasets.factory import create_connector  # noqa: PLC0415
    from gateway.datasets.service import DatasetService  # noqa: PLC0415
    from gateway.storage import StorageUnavailable  # noqa: PLC0415
    from gateway.storage.db import Database  # noqa: PLC0415

    key = load_audit_key(settings)  # refused (SettingsError) before anything is opened

    async def main() -> T:
        db = Database(settings.effective_database_url)
        datasets = DatasetService(db, create_connector)
        try:
            if settings.auto_migrate:
                await db.upgrade()
            # Held against the log's stored identity: a CLI never signs as another log.
            audit = await open_audit_log(db, settings, key, now=datetime.now(UTC))
            try:
                result = await action(AdminChanges(audit, datasets))
                try:
                    await audit.checkpoint_now()
                except StorageUnavailable:
                    err_console.print("sluis: warning: change recorded; checkpoint signed later")
                return result
            finally:
                await audit.close()
        finally:
            await datasets.aclose()
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
