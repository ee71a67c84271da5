"""`xinyi federated`: Federated training of joint models."""

from __future__ import annotations

import click


@click.group(name="federated")
def group() -> None:
    """Federated training of joint models."""
