"""`xinyi models`: the joint-model registry (operator side).

Models enter the registry only here or from federated training; no HTTP route registers
one (an institution choosing gateway weights could read a feature through them). The
operator's import is approved at once (it is the operator's own decision, logged in the
audit log like an approval on the review page) unless ``--pending`` leaves it for the
review page; a trained model always waits for that review.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import click

from audit import store as audit_store
from audit.entry import Sealed, seal
from cli.instance import settings_from
from common.db import make_engine
from common.errors import InvalidInput
from federated import he
from federated import store as fstore
from federated.models import OPERATOR, parse_model, review_entry


def _enqueue(session: Any, sealed: Sealed) -> int:
    """Queue a sealed entry with its opening (as ``AuditLog.enqueue`` does)."""
    return audit_store.enqueue(session, sealed.committed, time.time(), sealed.opening)


@click.group(name="models")
def group() -> None:
    """Joint-model registry."""


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--registered-by",
    default="operator:models-import",
    show_default=True,
    help="Who registers the model (recorded with the version).",
)
@click.option(
    "--pending",
    is_flag=True,
    help="Leave the version pending for the review page instead of approving it.",
)
@click.pass_context
def import_(ctx: click.Context, file: Path, registered_by: str, pending: bool) -> None:
    """Register a joint model from FILE (JSON: id, gateway_features, bank_features,
    gateway_weights, bank_weights, intercept, gateway_standardization {mean, std, clip};
    optional bank_standardization, context_params, description). Importing an existing
    id adds a new version; the id is ``name`` (the operator's) or ``owner/name``."""
    settings = settings_from(ctx)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{file}: not a JSON document: {e}", code="invalid_model") from e
    default = he.CKKSParams.from_dict(settings.config.he.model_dump())
    model = parse_model(raw, default_params=default)
    engine = make_engine(settings.database_url)
    try:
        stored = fstore.register_model(
            engine,
            model,
            registered_by,
            owner=OPERATOR,
            status="pending" if pending else "approved",
            catalog=settings.config.categories,
            audit=lambda session, m, status: _enqueue(
                session,
                seal(
                    review_entry(
                        m,
                        status,
                        settings.config.categories,
                        request_id="cli-" + secrets.token_hex(8),
                        now=int(time.time()),
                    ),
                    {name: c.department for name, c in settings.config.categories.items()},
                ),
            ),
        )
    finally:
        engine.dispose()
    click.echo(
        f"model {stored.ref}: {len(stored.gateway_features)} gateway features "
        f"({', '.join(stored.gateway_categories)}), {len(stored.bank_features)} bank features, "
        f"registered by {stored.registered_by}, {stored.status}"
    )


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the public views as JSON.")
@click.option("--all", "every", is_flag=True, help="Every version, pending and rejected ones too.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool, every: bool) -> None:
    """The newest approved version of every model (never the weights); ``--all`` lists
    every version with its review status."""
    engine = make_engine(settings_from(ctx).database_url)
    try:
        models = (
            [r.model for r in fstore.list_versions(engine)] if every else fstore.list_models(engine)
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([m.public_view() for m in models], indent=2, ensure_ascii=False))
        return
    if not models:
        click.echo("no models registered (xinyi models import FILE)")
    for m in models:
        click.echo(
            f"{m.ref}\tgateway: {', '.join(m.gateway_features)}\tbank: "
            f"{', '.join(m.bank_features)}\tby {m.registered_by}\t{m.status}"
        )
