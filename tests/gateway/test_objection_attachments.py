"""Objection attachments: PDF, PNG or JPEG by their bytes, a size limit, nothing stored
when refused, and only the enterprise and the owning department download them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from casework import store as casework_store
from tests.gateway.conftest import OTHER_ENTERPRISE, Bank
from tests.gateway.test_data_api import refusal
from tests.gateway.test_objections_api import (  # noqa: F401  (fixtures)
    enterprise,
    loaded,
    settings,
    tax_dept,
)

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _file(person: FlaskClient, data: bytes, name: str = "evidence.pdf", **kw: Any) -> Any:
    body = {
        "feature": "tax.paid_12m",
        "claim": "the receipts show more",
        "attachment": {"file_name": name, "content_base64": base64.b64encode(data).decode()},
        **kw,
    }
    return person.post("/v1/objections", json=body)


def _stored(app: Flask) -> tuple[int, int]:
    svc = app.extensions["xinyi"]
    with svc.engine.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(casework_store.objections))
        m = c.execute(sa.select(sa.func.count()).select_from(casework_store.objection_attachments))
        return int(n.scalar_one()), int(m.scalar_one())


def test_an_attachment_is_filed_listed_and_downloaded_by_those_concerned_only(
    loaded: Flask,
    enterprise: FlaskClient,
    tax_dept: FlaskClient,
    make_person: Callable[..., FlaskClient],
    make_bank: Callable[..., Bank],
    client: FlaskClient,
) -> None:
    resp = _file(enterprise, PDF, name="../../etc/收据 2026.pdf")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["attachment"]["content_type"] == "application/pdf"
    assert body["attachment"]["file_name"] == "收据 2026.pdf"
    assert body["attachment"]["size"] == len(PDF)
    oid = body["id"]
    (listed,) = tax_dept.get("/v1/objections").get_json()["objections"]
    assert listed["attachment"] == body["attachment"]
    path = f"/v1/objections/{oid}/attachment"
    for person in (enterprise, tax_dept):
        got = person.get(path)
        assert got.status_code == 200
        assert got.data == PDF and got.mimetype == "application/pdf"
        assert got.headers["Content-Disposition"].startswith("attachment;")
        assert got.headers["X-Content-Type-Options"] == "nosniff"
    refusal(make_person("department", department="social_security").get(path), 403, "not_owning_department")
    refusal(make_person("enterprise", OTHER_ENTERPRISE).get(path), 404, "objection_not_found")
    refusal(make_person("operator").get(path), 404, "objection_not_found")
    refusal(make_bank("demo_bank").get(client, path), 403, "wrong_role")
    # An objection without one: 404 attachment_not_found.
    plain = enterprise.post("/v1/objections", json={"feature": "tax.arrears", "claim": "paid"})
    assert plain.status_code == 201 and plain.get_json()["attachment"] is None
    refusal(enterprise.get(f"/v1/objections/{plain.get_json()['id']}/attachment"), 404, "attachment_not_found")


def test_a_bad_attachment_is_refused_and_nothing_is_stored(
    loaded: Flask, enterprise: FlaskClient
) -> None:
    # HTML named like an image: the bytes decide, and they are no allowed type.
    refusal(_file(enterprise, b"<html><script>alert(1)</script>", name="x.png"), 400, "attachment_refused")
    refusal(_file(enterprise, b"", name="x.pdf"), 400, "invalid_json")  # min_length: empty
    refusal(_file(enterprise, b"GIF89a" + b"\x00" * 20, name="x.gif"), 400, "attachment_refused")
    limit = loaded.extensions["xinyi"].settings.config.casework.max_attachment_bytes
    refusal(_file(enterprise, PDF + b"\x00" * limit), 413, "attachment_too_large")
    bad = enterprise.post(
        "/v1/objections",
        json={
            "feature": "tax.paid_12m",
            "claim": "x",
            "attachment": {"file_name": "a.pdf", "content_base64": "not base64!"},
        },
    )
    refusal(bad, 400, "attachment_refused")
    assert _stored(loaded) == (0, 0)
    # A PNG is taken, whatever its name says.
    resp = _file(enterprise, PNG, name="scan.pdf")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["attachment"]["content_type"] == "image/png"
    assert _stored(loaded) == (1, 1)
