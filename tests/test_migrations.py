"""The schema comes from Alembic alone and reaches head on every backend."""

from sqlalchemy import Engine, inspect


def test_migrations_reach_head_with_foundation_tables(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"institutions", "departments", "users", "consents", "webhook_outbox"} <= tables
    assert "alembic_version" in tables
