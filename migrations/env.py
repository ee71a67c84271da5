"""Alembic environment: online migrations against the URL set by common.db.migrate."""

from __future__ import annotations

from alembic import context

from common.db import make_engine

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
