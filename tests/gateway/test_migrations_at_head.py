"""A gateway whose schema is current starts without importing Alembic (issue 12's idle floor).

Alembic and Mako stay in a process's memory once imported (about 7 MiB). ``Database.upgrade``
reads the head revision from the migration scripts' text and the database's
``alembic_version``; only when both say the same single revision is Alembic skipped.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.storage.db import MIGRATIONS, Database, head_revision
from tests.support.databases import database_url

PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.storage.db import Database

    async def main():
        db = Database(sys.argv[1])
        await db.upgrade()
        await db.dispose()

    asyncio.run(main())
    print("alembic" in sys.modules)
    """
)
ROOT = Path(__file__).resolve().parents[2]


def _upgrade_imports_alembic(url: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()[-1] == "True"


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    from alembic.config import Config  # noqa: PLC0415 - the suite may import it
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_an_unclear_layout_leaves_the_decision_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    assert head_revision(tmp_path) == "b"
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')  # two heads
    assert head_revision(tmp_path) is None
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = ("a", "b")\n')  # a merge
    assert head_revision(tmp_path) is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_current_schema_skips_alembic_an_old_one_is_upgraded(
    backend: str, tmp_path: Path
) -> None:
    with database_url(backend, tmp_path) as url:
        assert _upgrade_imports_alembic(url)  # a new database: migrated by Alembic
        assert not _upgrade_imports_alembic(url)  # current: Alembic not imported

        async def step_back() -> None:  # the database one revision behind the scripts
            db = Database(url)
            async with db.engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = '0021'"))
                await conn.execute(text("DROP TABLE gateway_instances"))
            await db.dispose()

        asyncio.run(step_back())
        assert _upgrade_imports_alembic(url)  # behind: Alembic runs the missing migration
        assert not _upgrade_imports_alembic(url)
        assert asyncio.run(_instances_table(url))


async def _instances_table(url: str) -> bool:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT name, seen_at FROM gateway_instances"))
    finally:
        await db.dispose()
    return True
