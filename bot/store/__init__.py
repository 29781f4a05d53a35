"""The SQLite store: models, migrations and the queries the rest of PlantBot needs (no SQL elsewhere)."""

from bot.store.db import Store, StoreError, current_revision, downgrade, make_engine, upgrade

__all__ = ["Store", "StoreError", "current_revision", "downgrade", "make_engine", "upgrade"]
