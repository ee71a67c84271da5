"""`xinyi db`: the schema (Alembic) and the gateway's least-privilege database login.

``upgrade``/``downgrade``/``current`` run the revisions in ``migrations/`` (the same as
``alembic -c alembic.ini …`` from a checkout); ``roles`` sets up, as the schema owner,
what the gateway's login may do (``common.privileges``).
"""

from __future__ import annotations

import click

from cli.instance import instance_settings
from common.db import make_engine, migrate, migration_config
from common.errors import InvalidInput


@click.group(name="db")
def group() -> None:
    """Database schema (upgrade, downgrade, current) and the gateway's login (roles)."""


@group.command()
@click.argument("revision", default="head")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Apply the revisions up to REVISION (default: head)."""
    settings = instance_settings(ctx)
    migrate(settings.database_url, revision)
    click.echo(f"schema at {_current(settings.database_url)}")


@group.command()
@click.argument("revision")
@click.pass_context
def downgrade(ctx: click.Context, revision: str) -> None:
    """Undo the revisions above REVISION (an id such as 0004, or base). Run it with
    the newer version's code, before reinstalling the older one."""
    from alembic import command
    from alembic.util.exc import CommandError

    settings = instance_settings(ctx)
    try:
        command.downgrade(migration_config(settings.database_url), revision)
    except CommandError as e:
        raise InvalidInput(f"cannot downgrade to {revision!r}: {e}", code="bad_revision") from e
    click.echo(f"schema at {_current(settings.database_url)}")


@group.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """The schema's revision, and the newest this code knows."""
    from alembic.script import ScriptDirectory

    settings = instance_settings(ctx)
    head = ScriptDirectory.from_config(migration_config(settings.database_url)).get_current_head()
    now = _current(settings.database_url)
    click.echo(f"schema at {now}; this code's head is {head}")


def _current(url: str) -> str:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or "base (empty)"
    finally:
        engine.dispose()


@group.command()
@click.option(
    "--login",
    default=None,
    help="The gateway's PostgreSQL login (created beforehand with a password): made a "
    "member of xinyi_app and xinyi_audit.",
)
@click.pass_context
def roles(ctx: click.Context, login: str | None) -> None:
    """PostgreSQL, as the schema owner: create xinyi_app (what requests do on every
    table) and xinyi_audit (insert-and-select audit log), grant them in the current
    schema, and make LOGIN a member of both."""
    from audit.store import grant_writer_role
    from common.privileges import APP_ROLE, AUDIT_ROLE, grant_app_role, grant_to_login

    settings = instance_settings(ctx)
    engine = make_engine(settings.database_url)
    try:
        if engine.dialect.name != "postgresql":
            raise InvalidInput("roles exist on PostgreSQL only", code="not_postgresql")
        with engine.begin() as conn:
            grant_writer_role(conn)
            grant_app_role(conn)
            if login is not None:
                grant_to_login(conn, login)
    finally:
        engine.dispose()
    click.echo(f"roles {APP_ROLE} and {AUDIT_ROLE} granted in the current schema")
    if login is not None:
        click.echo(f"login {login} is a member of both")
