"""`xinyi audit`: The tamper-evident audit log: verify, witness."""

from __future__ import annotations

import click


@click.group(name="audit")
def group() -> None:
    """The tamper-evident audit log: verify, witness."""
