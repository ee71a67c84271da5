"""The ``xinyi`` command. Each subgroup lives in its own module; this root only
composes them and turns project errors into a readable message and exit code 2."""

from __future__ import annotations

import os
import sys

import click

from common.errors import Error

# Subcommands are imported when invoked (or listed), not at start: every `xinyi` call
# would otherwise pay for importing TenSEAL, the registry and the importer.
_COMMANDS: dict[str, tuple[str, str]] = {
    "admin": ("cli.admin", "admin"),
    "keys": ("cli.admin", "keys"),
    "audit": ("cli.audit", "group"),
    "bank": ("cli.bank", "group"),
    "data": ("cli.data", "group"),
    "db": ("cli.db", "group"),
    "federated": ("cli.federated", "group"),
    "grades": ("cli.grades", "group"),
    "models": ("cli.models", "group"),
    "init": ("cli.server", "init"),
    "serve": ("cli.server", "serve"),
    "demo": ("cli.demo", "demo"),
    "stats": ("cli.stats", "group"),  # the financing statistics (docs/financing.md)
    "node": ("cli.node", "group"),  # the node network (issue 18)
}


class _Root(click.Group):
    """The root group: subcommands are imported when invoked or listed (``_COMMANDS``),
    and an expected failure is one line on stderr with exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import importlib

        found = _COMMANDS.get(cmd_name)
        if found is None:
            return None
        command = getattr(importlib.import_module(found[0]), found[1])
        return command if isinstance(command, click.Command) else None

    def invoke(self, ctx: click.Context) -> object:
        from sqlalchemy.exc import InterfaceError, OperationalError

        try:
            return super().invoke(ctx)
        except Error as e:
            click.echo(f"error: {e.code}: {e.message}", err=True)
            sys.exit(2)
        except (OperationalError, InterfaceError) as e:
            # The database is down, missing or refuses this login: an expected failure
            # of an operator command, said in one line instead of a driver traceback.
            reason = next(iter(str(e.orig or e).strip().splitlines()), "")
            click.echo(
                f"error: database_unavailable: the database did not answer ({reason}); "
                "check that it runs and that the database exists (createdb), and the URL "
                "in XINYI_DATABASE_URL or config.yaml's database.url",
                err=True,
            )
            sys.exit(2)


@click.group(cls=_Root)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Path to config.yaml (default: $XINYI_CONFIG or the bundled file).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Xinyi Gateway: consent, HE joint scoring and a Merkle audit log for SME credit."""
    from common.logging import configure

    # On stderr: JSON lines, or readable lines on a terminal (common.logging);
    # XINYI_LOG_LEVEL=DEBUG for more, XINYI_LOG_FORMAT=json|console to choose.
    configure(level=os.environ.get("XINYI_LOG_LEVEL", "INFO").upper())
    ctx.obj = {"config_path": config_path}
