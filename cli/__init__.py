"""The ``xinyi`` command. Each subgroup lives in its own module; this root only
composes them and turns project errors into a readable message and exit code 2."""

from __future__ import annotations

import os
import sys

import click

from common.errors import Error


class _Root(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Error as e:
            click.echo(f"error: {e.code}: {e.message}", err=True)
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


def _register() -> None:
    from cli import admin, audit, bank, data, demo, federated, models, server

    for group in (
        *admin.commands,
        audit.group,
        bank.group,
        data.group,
        federated.group,
        models.group,
    ):
        main.add_command(group)
    for command in (*server.commands, demo.demo):
        main.add_command(command)


_register()
