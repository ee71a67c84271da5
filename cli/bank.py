"""`xinyi bank`: The institution side: keys, CKKS context, consent requests, scoring, training."""

from __future__ import annotations

import click


@click.group(name="bank")
def group() -> None:
    """The institution side: keys, CKKS context, consent requests, scoring, training."""
