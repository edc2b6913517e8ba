"""Alembic migrations of the easel database; run them through `storage.migrate.upgrade_database`."""
