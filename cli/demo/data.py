"""Demo steps for department data (wired into ``xinyi demo`` by ``cli/demo/steps.py``).

``step_city``: a synthetic city; every department loads its file (the tax bureau
through the department import API, the others as ``xinyi data import`` does).
``step_data_services``: a bank asks an enterprise for consent, gets a public report
and a banded one, verifies "tax paid in 12 months ≥ 1M", and runs out of verification
budget when it tries to narrow a value down; the enterprise sees what is left.

Reads ``story.bank`` (the SDK client made at onboarding), ``enterprises`` (city size)
and ``password`` (for the people this module creates). Writes ``city_dir``, ``city``
(the manifest), ``enterprise`` (the USCC the story is about), ``data_grant``,
``data_consent_id`` and ``accounts``.
"""

from __future__ import annotations

from typing import Any

import httpx

from cli.demo.story import Story, say, step
from common.db import make_engine
from records import synth
from records.catalog import Catalog
from records.service import import_csv
from registry import Registry

SEED = 2025
THRESHOLD = 1_000_000


def _registry(story: Story) -> Registry:
    if story.engine is None:
        story.engine = make_engine(story.settings.database_url)
    return Registry(story.engine)


def account(story: Story, role: str, login: str, **kw: Any) -> httpx.Client:
    """A signed-in person (created when missing)."""
    password = story.password
    registry = _registry(story)
    if registry.authenticate(login, password) is None:
        registry.add_user(login=login, password=password, role=role, **kw)
        story.accounts.append((role, login, password))
    return story.person(login, password)


def step_city(story: Story) -> None:
    step("A synthetic city: departments load their data")
    n = story.enterprises
    catalog = Catalog(story.settings.config)
    city = synth.generate(catalog, n, SEED)
    out = story.home / "city"
    synth.write(city, out)
    story.city_dir = out
    story.city = city.manifest()
    say(f"{n} enterprises (seed {SEED}) written to {out}")
    registry = _registry(story)
    names = {d.id: d.name for d in story.settings.config.departments}
    for department in catalog.departments:
        if registry.get_department(department) is None:
            registry.add_department(department, name=names[department])
    # The tax bureau uploads through the API, as a department user would.
    tax = account(story, "department", "tax_bureau", department_id="tax")
    resp = tax.post(
        "/v1/departments/tax/imports?file_name=tax.csv",
        content=(out / "tax.csv").read_bytes(),
        headers={"Content-Type": "text/csv"},
    )
    resp.raise_for_status()
    loaded = resp.json()
    say(f"  {names['tax']}: {loaded['rows']} rows, snapshot v{loaded['version']} (via the API)")
    engine = story.engine
    assert engine is not None  # made by _registry above
    for department in catalog.departments:
        if department == "tax":
            continue
        data = (out / f"{department}.csv").read_bytes()
        record = import_csv(
            engine, catalog, department, data, file_name=f"{department}.csv", actor="demo"
        )
        say(f"  {names[department]}: {record.row_count} rows, snapshot v{record.version}")
    # The legal representatives' id numbers: stored only as keyed hashes (the sign-up
    # check compares against them; records/pseudonyms.py).
    ids = out / f"{synth.LEGAL_IDS_TABLE}.csv"
    if ids.exists():
        from keys import KeyRing
        from records.pseudonyms import LEGAL_REP_ID

        record = import_csv(
            engine,
            catalog,
            "market_regulation",
            ids.read_bytes(),
            file_name=ids.name,
            actor="demo",
            pseudonym_key=KeyRing(story.settings).pseudonym_key(LEGAL_REP_ID),
        )
        say(
            f"  {names['market_regulation']}: {record.row_count} legal representatives' ids, "
            "kept only as keyed hashes"
        )
    # A refused file: one bad row, nothing loaded, every problem named.
    bad = b"uscc,tax.paid_12m\n91330100716105852F,-12.00\n91330100716105852G,5\n"
    resp = tax.post(
        "/v1/departments/tax/imports?file_name=typo.csv",
        content=bad,
        headers={"Content-Type": "text/csv"},
    )
    body = resp.json()
    say(f"  a file with mistakes is refused ({resp.status_code} {body['error']}):")
    for r in body["rejects"]:
        say(f"    line {r['line']}, {r['column']}: {r['code']} ({r['reason']})")
    tax_rows = city.tables["tax"].columns
    paid = tax_rows["tax.paid_12m"]
    # The story's enterprise pays between 1M and 5M: the verification says yes.
    chosen = next(
        u
        for u, p in zip(tax_rows["uscc"].tolist(), paid.tolist(), strict=True)
        if THRESHOLD * 1.2 <= p < 4_000_000
    )
    story.enterprise = chosen  # other areas' steps reuse the loaded city


def _bank(story: Story) -> tuple[str, dict[str, str]]:
    """The demo bank's id and bearer header (its SDK client is made at onboarding)."""
    client = story.the_bank().client
    return client.institution_id, {"Authorization": f"Bearer {client.token()}"}


def step_data_services(story: Story) -> None:
    step("Usable, not visible: a banded report and yes/no verifications")
    code = story.the_enterprise()
    http = story.http
    bank_id, bank = _bank(story)
    enterprise = account(story, "enterprise", f"ent_{code[-6:].lower()}", uscc=code)
    url = f"/v1/enterprises/{code}/report"
    public = http.get(url, headers=bank).json()
    name = public["public"].get("registration.name", code)
    say(f"{bank_id} reads the public report on {name} (no grant needed, still logged):")
    for fid in ("registration.industry", "registration.size", "registration.established"):
        say(f"  {fid}: {public['public'].get(fid)}")
    asked = http.post(
        "/v1/consents",
        headers=bank,
        json={
            "enterprise": code,
            "purpose": "working_capital_loan",
            "ops": ["report", "verify"],
            "categories": ["tax", "social_security"],
            "duration_days": 90,
            "max_uses": 50,
        },
    )
    asked.raise_for_status()
    cid = asked.json()["id"]
    approved = enterprise.post(f"/v1/consents/{cid}/approve")
    approved.raise_for_status()
    grant = approved.json()["grant"]
    story.data_grant, story.data_consent_id = grant, cid
    say(f"the enterprise approves consent {cid} (report, verify; tax, social security)")
    banded = http.get(url, params={"grant": grant}, headers=bank).json()
    catalog = Catalog(story.settings.config)
    say("the banded report: bands only, never values")
    for fid, band in banded["banded"].items():
        description = catalog.rule(fid).spec.description
        say(f"  {description}: {band['band']}  ({band['band_en']} {band['unit'] or ''})".rstrip())
    yes = http.post(
        "/v1/verify",
        headers=bank,
        json={"grant": grant, "feature": "tax.paid_12m", "op": ">=", "value": THRESHOLD},
    ).json()
    say(
        f"verify 纳税额近12个月 ≥ 100万 (tax paid in 12 months ≥ 1M): {yes['result']} "
        f"(audit entry #{yes['audit_index']})"
    )
    say("the bank tries to pin down the invoiced sales by bisection:")
    low, high = 0, 1_000_000_000
    while True:
        mid = (low + high) // 2
        resp = http.post(
            "/v1/verify",
            headers=bank,
            json={"grant": grant, "feature": "tax.revenue_12m", "op": ">=", "value": mid},
        )
        if resp.status_code != 200:
            say(f"  refused: {resp.status_code} {resp.json()['error']}")
            break
        answer = resp.json()["result"]
        say(f"  ≥ {mid:,}? {answer}")
        low, high = (mid, high) if answer else (low, mid)
    say(f"  all it learned: between {low:,} and {high:,}")
    view = enterprise.get(f"/v1/consents/{cid}").json()
    left = view["verification_budget"]
    say("the enterprise sees each feature's verification budget:")
    for fid, b in left.items():
        say(f"  {fid}: used {b['used']} of {b['budget']}, {b['left']} left")
