"""`xinyi models`: Joint-model registry."""

from __future__ import annotations

import click


@click.group(name="models")
def group() -> None:
    """Joint-model registry."""
