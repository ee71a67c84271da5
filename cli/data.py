"""`xinyi data`: Department data: import, synthetic city."""

from __future__ import annotations

import click


@click.group(name="data")
def group() -> None:
    """Department data: import, synthetic city."""
