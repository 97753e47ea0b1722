"""Storage: SQLAlchemy 2 (async) on SQLite (embedded default) or PostgreSQL; Alembic."""


class StorageUnavailable(Exception):
    """The database cannot be reached or refused the operation."""
