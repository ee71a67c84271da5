"""Alembic environment: online migrations against the URL set by common.db.migrate, or,
run as ``alembic -c alembic.ini …``, the gateway's own database settings."""

from __future__ import annotations

from alembic import context

from common.db import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from common.settings import load_settings

    url = load_settings().database_url
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
