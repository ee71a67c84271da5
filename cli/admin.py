"""`xinyi admin` and `xinyi keys`: operator commands."""

from __future__ import annotations

import click


@click.group(name="admin")
def admin() -> None:
    """Onboard and suspend institutions, departments and users."""


@click.group(name="keys")
def keys() -> None:
    """Signing keys: rotation."""


commands: list[click.Command] = [admin, keys]
