"""Usable but invisible: canary values planted in non-public department data never
appear in any response body, header or log line, whatever route is called by whom.

Every rule of ``app.url_map`` is exercised (routes added later by other areas are
covered without editing this file) as every role: anonymous, an institution without a
grant, an institution holding a grant for every op and category, the enterprise, a
department and the operator. Path parameters are filled from ``PARAMS`` (unknown ones
are tried with a few generic values); bodies are a generic guess plus the explicit
cases in ``EXPLICIT_BODIES`` for routes a guess cannot reach. The scan covers the JSON
log lines (structlog, as configured in production), stdlib log records and anything
printed.

The lead re-runs this after every area lands: add a case to ``PARAMS`` /
``EXPLICIT_BODIES`` when a new route needs one to get past input validation.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from flask import Flask
from flask.testing import FlaskClient

from common import logging as xinyi_logging
from records import store
from records.catalog import Catalog
from records.service import ImportRejected, import_csv
from tests.gateway.conftest import ENTERPRISE, OTHER_ENTERPRISE, Bank, consent_body

# Distinctive values in every non-public feature that can hold one (small-range counts
# and enums cannot be told apart from other numbers, so they are not canaries).
CANARIES = {
    "tax.paid_12m": "7391562.83",
    "tax.revenue_12m": "48213977.41",
    "tax.arrears": "6182937.41",
    "social_security.insured_employees": "8163947",
    "housing_fund.contributors": "5298361",
    "housing_fund.paid_12m": "7712945.19",
    "utilities.power_kwh_12m": "92817364.5",
}


def renderings(value: str) -> set[str]:
    """The ways a leaked value could be written: as given, whole part, with thousands
    separators, in 万 units."""
    number = float(value)
    whole = str(int(number))
    return {value, whole, f"{int(number):,}", f"{number / 1e4:g}万", repr(number)}


NEEDLES = sorted(set().union(*(renderings(v) for v in CANARIES.values())), key=len)

DEPARTMENT_FILES = {
    "tax": ["tax.paid_12m", "tax.revenue_12m", "tax.arrears"],
    "social_security": ["social_security.insured_employees"],
    "housing_fund": ["housing_fund.contributors", "housing_fund.paid_12m"],
    "utilities": ["utilities.power_kwh_12m"],
}
NON_PUBLIC = ["tax", "social_security", "housing_fund", "utilities"]


@dataclass
class Capture:
    """Everything the gateway said: response bodies and headers, log lines."""

    bodies: list[tuple[str, str]] = field(default_factory=list)  # (what, text)
    log: io.StringIO = field(default_factory=io.StringIO)
    statuses: dict[str, list[int]] = field(default_factory=dict)

    def json_bodies(self) -> list[Any]:
        out = []
        for _, text in self.bodies:
            try:
                out.append(json.loads(text.split("\n", 1)[0]))
            except ValueError:
                continue
        return out

    def record(self, what: str, resp: Any) -> Any:
        text = resp.get_data(as_text=True)
        headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        self.bodies.append((what, text + "\n" + headers))
        self.statuses.setdefault(what.split(" ", 2)[1], []).append(resp.status_code)
        return resp


def leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


_PRINT_METHODS = ("msg", "log", "debug", "info", "warn", "warning", "fatal", "failure",
                  "err", "error", "critical", "exception")  # fmt: skip


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    """Every structlog line as finally rendered, whichever configuration a module-level
    logger was bound under (all of them end in a PrintLogger), and stdlib records."""
    cap = Capture()
    caplog.set_level(logging.DEBUG)

    def keep(_self: Any, message: str) -> None:
        cap.log.write(message + "\n")

    for name in _PRINT_METHODS:
        monkeypatch.setattr(structlog.PrintLogger, name, keep)
    xinyi_logging.configure(level="DEBUG", stream=io.StringIO())  # production rendering
    yield cap
    structlog.reset_defaults()


def plant(app: Flask) -> dict[str, Any]:
    """Load the canaries for ENTERPRISE (and plain values for another enterprise)."""
    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    imports: dict[str, int] = {}
    for department, features in DEPARTMENT_FILES.items():
        header = ",".join(["uscc", *features])
        canary_row = ",".join([ENTERPRISE, *(CANARIES[f] for f in features)])
        plain_row = ",".join([OTHER_ENTERPRISE, *("100" for _ in features)])
        record = import_csv(
            svc.engine,
            catalog,
            department,
            f"{header}\n{canary_row}\n{plain_row}\n".encode(),
            file_name=f"{department}.csv",
            actor="test",
        )
        imports[department] = record.id
    # A refused file holding canaries too: its stored reasons must not hold them.
    bad = f"uscc,tax.paid_12m\n{ENTERPRISE},-{CANARIES['tax.paid_12m']}\nbad,1\n".encode()
    with pytest.raises(ImportRejected) as refused:
        import_csv(svc.engine, catalog, "tax", bad, file_name="bad.csv", actor="test")
    imports["rejected"] = refused.value.record.id
    # The canaries really are there to be found.
    held = store.current_values(svc.engine, ENTERPRISE, list(CANARIES))
    assert {f: str(v) for f, v in held.items()} == CANARIES
    return imports


def plant_grades(app: Flask) -> list[str]:
    """Public registration and credit-office rows for both enterprises, this month's
    grades over them and the canaries, ENTERPRISE opted in to the whitelist; returns the
    categories a grant for op grade names."""
    import time

    from common.workdays import china_date
    from gateway.grades import grade_categories
    from grading import service as grading

    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    rows = {
        "market_regulation": "uscc,registration.name,registration.status,"
        "registration.industry_division\n"
        f"{ENTERPRISE},甲公司,active,17\n{OTHER_ENTERPRISE},乙公司,active,17\n",
        "credit_office": "uscc,public_credit.grade,public_credit.dishonesty_records\n"
        f"{ENTERPRISE},A,none\n{OTHER_ENTERPRISE},C,none\n",
    }
    for department, text in rows.items():
        import_csv(svc.engine, catalog, department, text.encode(), file_name="g.csv", actor="t")
    today = china_date(time.time())
    grading.compute(
        svc.engine, svc.settings, today.strftime("%Y-%m"), today=today, now=1, actor="test"
    )
    grading.set_recommendation(svc.engine, ENTERPRISE, True, now=1, actor="test")
    return grade_categories(svc.settings.config)[0]


@dataclass
class Role:
    name: str
    client: FlaskClient
    headers: dict[str, str]


def verify_bodies(grant: str, catalog: Catalog) -> list[dict[str, Any]]:
    out = []
    for fid, rule in catalog.features.items():
        for op in rule.spec.verify_ops:
            values = rule.spec.values or [0, 1_000_000]
            for value in values[:2]:
                out.append({"grant": grant, "feature": fid, "op": op, "value": value})
    return out


def test_no_canary_leaves_the_gateway(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., FlaskClient],
    capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    imports = plant(app)
    catalog = Catalog(app.extensions["xinyi"].settings.config)
    holder, stranger = make_bank("holder_bank"), make_bank("stranger_bank")
    enterprise = make_person("enterprise", ENTERPRISE)
    department = make_person("department", department="tax")
    operator = make_person("operator")
    grants = {}
    consent_ids = {}
    for ops in (["report", "verify", "score"], ["train"]):
        purpose = "joint_model_training" if ops == ["train"] else "working_capital_loan"
        body = consent_body(ops=ops, categories=NON_PUBLIC, purpose=purpose, max_uses=200)
        cid = holder.post(client, "/v1/consents", body).get_json()["id"]
        grants[ops[0]] = enterprise.post(f"/v1/consents/{cid}/approve").get_json()["grant"]
        consent_ids[ops[0]] = cid
    # Grades (issue 15): a month computed over the canaries, the enterprise on the
    # whitelist (public credit grade A: 高级 by the direct method), a grant for op grade.
    graded = plant_grades(app)
    body = consent_body(ops=["grade"], categories=graded, max_uses=200)
    cid = holder.post(client, "/v1/consents", body).get_json()["id"]
    grants["grade"] = enterprise.post(f"/v1/consents/{cid}/approve").get_json()["grant"]
    pending = holder.post(client, "/v1/consents", consent_body(categories=NON_PUBLIC))
    grant = grants["report"]

    params: dict[str, list[Any]] = {
        "uscc": [ENTERPRISE, OTHER_ENTERPRISE],
        "consent_id": [consent_ids["report"], pending.get_json()["id"]],
        "action": ["pause", "resume", "reject"],
        "department": ["tax", "utilities"],
        "import_id": [imports["tax"], imports["rejected"], imports["utilities"]],
        "index": [0, 1, 2, 5],
        "filename": ["x.css"],
    }
    queries = [
        "",
        f"?grant={grant}",
        f"?grant={grants['train']}",
        f"?grant={grants['grade']}",
        "?after=0&limit=1000",
        "?index=1&size=5",
        "?first=1&second=5",
        "?status=active",
    ]
    json_bodies: list[Any] = [
        {},
        {"grant": grant, "enterprise": ENTERPRISE, "uscc": ENTERPRISE, "feature": "tax.paid_12m",
         "op": ">=", "value": 1_000_000, "model": "m", "context": "", "ciphertext": ""},
        {"grants": [grant], "usccs": [ENTERPRISE], "features": list(CANARIES)},
    ]  # fmt: skip
    explicit: dict[str, list[Any]] = {
        "data.verify": verify_bodies(grant, catalog),
        "consent.create": [consent_body(categories=NON_PUBLIC)],
        "data.import_file": ["good_csv", "bad_csv", "headerless_csv"],
    }
    files = {
        "good_csv": "uscc,tax.paid_12m,tax.revenue_12m\n"
        f"{ENTERPRISE},{CANARIES['tax.paid_12m']},{CANARIES['tax.revenue_12m']}\n",
        "bad_csv": "uscc,tax.arrears,tax.revenue_12m\n"
        f"{ENTERPRISE},{CANARIES['tax.arrears']},{CANARIES['tax.revenue_12m']}\n"
        f"{ENTERPRISE},-{CANARIES['tax.arrears']},x{CANARIES['tax.revenue_12m']}\n",
        "headerless_csv": f"{ENTERPRISE},{CANARIES['tax.paid_12m']},{CANARIES['tax.arrears']}\n",
    }

    roles = [
        Role("anonymous", app.test_client(), {}),
        Role("institution_without_grant", client, stranger.headers()),
        Role("department", department, {}),
        Role("operator", operator, {}),
        Role("institution_with_grant", client, holder.headers()),
        Role("enterprise", enterprise, {}),  # last: its actions change the grants
    ]
    adapter = app.url_map.bind("localhost")
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule == "/v1/session", r.rule))
    for role in roles:
        for rule in rules:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                names = sorted(rule.arguments)
                choices = [params.get(n, ["1", "x", ENTERPRISE]) for n in names]
                for combo in itertools.product(*choices):
                    path = adapter.build(rule.endpoint, dict(zip(names, combo, strict=True)),
                                         method=method)  # fmt: skip
                    call = getattr(role.client, method.lower())
                    what = f"{role.name} {rule.rule} {method} {path}"
                    if method == "GET" or method == "DELETE":
                        for q in queries:
                            capture.record(what + q, call(path + q, headers=role.headers))
                        continue
                    for body in explicit.get(rule.endpoint, json_bodies):
                        if isinstance(body, str):
                            resp = call(path, data=files[body], content_type="text/csv",
                                        headers=role.headers)  # fmt: skip
                        else:
                            resp = call(path, json=body, headers=role.headers)
                        capture.record(what, resp)
                    form = call(path, data={"grant_type": "client_credentials", "grant": grant},
                                headers=role.headers)  # fmt: skip
                    capture.record(what + " form", form)

    # The data routes really were reached and answered (the scan is not vacuous).
    assert 200 in capture.statuses["/v1/enterprises/<uscc>/report"]
    assert 200 in capture.statuses["/v1/verify"]
    assert 201 in capture.statuses["/v1/departments/<department>/imports"]
    assert 400 in capture.statuses["/v1/departments/<department>/imports"]
    banded = [b for b in capture.json_bodies() if isinstance(b, dict) and b.get("banded")]
    assert banded, "no banded report was served"
    assert 200 in capture.statuses["/v1/enterprises/<uscc>/grade"]
    assert 200 in capture.statuses["/v1/whitelist"]
    listed = [b for b in capture.json_bodies() if isinstance(b, dict) and b.get("enterprises")]
    assert listed, "no whitelist listed anyone"
    explained = [b for b in capture.json_bodies() if isinstance(b, dict) and b.get("explanation")]
    assert explained, "the enterprise's own grade was not served"
    assert leaks("… 7391562.83 …") and leaks('{"x":7391562}')  # the scanner finds them

    # An enterprise may see (and download) its own data, free (issue 7): only there.
    own_data = ("enterprise /enterprise/data",)
    found = [
        (what, leaks(text))
        for what, text in capture.bodies
        if leaks(text) and not what.startswith(own_data)
    ]
    assert not found, f"canaries in responses: {found[:5]}"
    log_lines = capture.log.getvalue().splitlines()
    assert sum("request_refused" in line for line in log_lines) > 100
    assert any("records_import_rejected" in line for line in log_lines)
    assert not [line for line in log_lines if leaks(line)]
    stdlib = [r.getMessage() for r in caplog.records]
    assert not [m for m in stdlib if leaks(m)]


def test_log_lines_are_captured_as_production_renders_them(capture: Capture) -> None:
    xinyi_logging.get_logger("probe").info("probe_event", n=7391562)
    line = capture.log.getvalue().splitlines()[-1]
    assert json.loads(line)["event"] == "probe_event"
    assert leaks(line)
