"""Data services for institutions: banded reports and yes/no verifications.

Every answer goes through ``enforce`` first (consent + audit) and is computed only after
it; non-public values leave only as bands or as one boolean, never as values.
"""

from __future__ import annotations

from typing import Any

import jwt
from flask import Blueprint, request

from common import uscc
from common.errors import InvalidInput, NotFound
from gateway.api.consent import json_body
from gateway.auth import authenticated, current_principal
from gateway.enforce import enforce
from gateway.services import services
from records import catalog as rules
from records import store as records

bp = Blueprint("data", __name__)


def _public_features() -> tuple[list[str], list[str]]:
    cfg = services().settings.config
    cats = [c for c, cat in cfg.categories.items() if cat.visibility == "public"]
    feats = [f"{c}.{f}" for c in cats for f in cfg.categories[c].features]
    return cats, feats


def _grant_categories(grant: str) -> list[str]:
    """The non-public categories a grant names (its signature is checked by enforce)."""
    try:
        claims = jwt.decode(grant, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    cfg = services().settings.config
    named = claims.get("categories") if isinstance(claims, dict) else None
    if not isinstance(named, list):
        return []
    return [
        c
        for c in named
        if isinstance(c, str)
        and c in cfg.categories
        and cfg.categories[c].visibility == "non_public"
    ]


@bp.get("/v1/enterprises/<code>/report")
@authenticated("institution")
def report(code: str) -> dict[str, Any]:
    uscc.validate(code)
    svc = services()
    cfg = svc.settings.config
    principal = current_principal()
    grant = request.args.get("grant")
    public_cats, public_feats = _public_features()
    banded_cats = _grant_categories(grant) if grant else []
    banded_feats = [
        f"{c}.{f}"
        for c in banded_cats
        for f, spec in cfg.categories[c].features.items()
        if spec.bands
    ]
    if grant:
        access = enforce(
            principal,
            grant=grant,
            op="report",
            enterprise=code,
            categories=banded_cats,
            features=public_feats + banded_feats,
            public_categories=public_cats,
        )
    else:
        access = enforce(
            principal,
            grant=None,
            op="report",
            enterprise=code,
            categories=public_cats,
            features=public_feats,
            needs_grant=False,
        )
    values = records.current_values(svc.engine, code, public_feats + banded_feats)
    public = {f: values[f] for f in public_feats if f in values}
    banded = {
        f: rules.band(svc.settings.feature(f)[2], values[f]) for f in banded_feats if f in values
    }
    return {"enterprise": code, "public": public, "banded": banded, "audit_index": access.finish()}


@bp.post("/v1/verify")
@authenticated("institution")
def verify() -> dict[str, Any]:
    body = json_body()
    unknown = set(body) - {"grant", "feature", "op", "value"}
    if unknown:
        raise InvalidInput(
            f"unknown field {sorted(unknown)[0]!r}", code="invalid_json", field=sorted(unknown)[0]
        )
    svc = services()
    feature_id, op = body.get("feature"), body.get("op")
    if not isinstance(feature_id, str):
        raise InvalidInput(
            "feature: a feature id such as tax.paid_12m", code="invalid_json", field="feature"
        )
    try:
        category, cat, feature = svc.settings.feature(feature_id)
    except KeyError:
        raise InvalidInput(
            f"unknown feature {feature_id!r}", code="unknown_feature", field="feature"
        ) from None
    if cat.visibility != "non_public" or not feature.verify_ops:
        raise InvalidInput(
            f"{feature_id} cannot be verified", code="feature_not_verifiable", field="feature"
        )
    if op not in feature.verify_ops:
        raise InvalidInput(
            f"op must be one of {list(feature.verify_ops)} for {feature_id}",
            code="op_not_allowed",
            field="op",
        )
    expected = rules.parse_value(feature, body.get("value"))
    grant = body.get("grant")
    access = enforce(
        current_principal(),
        grant=grant if isinstance(grant, str) else None,
        op="verify",
        enterprise=None,
        categories=[category],
        features=[feature_id],
        verify_feature=feature_id,
    )
    assert access.enterprise is not None
    stored = records.current_values(svc.engine, access.enterprise, [feature_id])
    index = access.finish()
    if feature_id not in stored:
        raise NotFound(
            f"the gateway holds no {feature_id} for this enterprise",
            code="no_data",
            audit_index=index,
        )
    return {
        "result": rules.evaluate(feature, stored[feature_id], op, expected),
        "audit_index": index,
    }
