"""Both languages, everywhere: the catalog is complete, templates and page code hold no
text of their own, and every page renders in Chinese and in English with no missing
message."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from common.db import migrate
from common.settings import OPERATIONS
from consent.policy import STATES
from gateway.web import views
from gateway.web.i18n import LANGS, MESSAGES, MISSING, translate
from keys.ring import PURPOSES
from tests.web.conftest import OTHER_ENTERPRISE, Bank, Person, request_consent, settle

WEB = Path(__file__).resolve().parents[2] / "gateway" / "web"
CJK = re.compile(
    r"[\u2e80-\u2fff\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
LITERAL_KEY = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]*[a-z0-9_])['"]""")
NOTICE_KEY = re.compile(r"""(?:notify\(|title_key=)\s*['"]([a-z0-9_.]*[a-z0-9_])['"]""")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
CONTRACT_REFUSALS = (
    "grant_missing",
    "grant_invalid",
    "grant_wrong_audience",
    "grant_expired",
    "grant_not_yet_valid",
    "grant_revoked",
    "grant_paused",
    "scope_operation",
    "scope_category",
    "grant_uses_exhausted",
    "institution_suspended",
)


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    for key, (zh, en) in MESSAGES.items():
        assert zh.strip() and en.strip(), key
        assert set(PLACEHOLDER.findall(zh)) == set(PLACEHOLDER.findall(en)), key


def test_english_messages_hold_no_chinese_except_the_name_of_chinese() -> None:
    for key, (_, en) in MESSAGES.items():
        if key == "lang.other":  # the switch names the other language in that language
            continue
        assert not CJK.search(en), (key, en)


def test_a_missing_key_shows_up_instead_of_disappearing() -> None:
    assert translate("en", "no.such.key") == MISSING.format("no.such.key")


def _strings_of(source: str) -> str:
    """The string literals of a module, docstrings left out (they are not shown)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return "\n".join(
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    )


def test_templates_and_page_code_hold_no_text_of_their_own() -> None:
    sources = [*WEB.glob("templates/**/*.html"), *WEB.glob("*.py"), *WEB.glob("static/*.js")]
    assert len(sources) > 15
    for path in sources:
        if path.name == "i18n.py":
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            text = _strings_of(text)
        found = CJK.findall(text)
        assert not found, f"{path.relative_to(WEB)} has text outside the catalog: {found[:5]}"


def test_every_key_the_pages_name_is_in_the_catalog() -> None:
    named: set[str] = set()
    for path in [*WEB.glob("templates/**/*.html"), *WEB.glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        named |= set(LITERAL_KEY.findall(text)) | set(NOTICE_KEY.findall(text))
    assert len(named) > 150
    assert sorted(named - set(MESSAGES)) == []


def test_every_code_a_page_can_show_has_words() -> None:
    expected = (
        [f"status.{s}" for s in (*STATES, "suspended")]
        + [f"op.{o}" for o in (*OPERATIONS, *views.CONSENT_OPERATIONS)]
        + [f"op_desc.{o}" for o in OPERATIONS]
        + [f"decision.{c}" for c in (*CONTRACT_REFUSALS, "allowed", "verify_budget_exhausted")]
        + [f"keypurpose.{p}" for p in PURPOSES]
        + [f"keystate.{s}" for s in ("signing", "published", "unpublished")]
        + [f"action.{a}" for a in ("approve", "reject", "pause", "resume", "revoke", "suspend")]
        + ["visibility.public", "visibility.non_public"]
        + [f"role.{r}" for r in ("enterprise", "department", "operator")]
        + [f"confirm.{a}.{p}" for a in ("pause", "revoke", "resume") for p in ("heading", "button")]
        + [
            f"confirm.{kind}.{a}.{p}"
            for kind in ("institution", "department")
            for a, parts in (("suspend", ("stop1", "stay1")), ("resume", ("p1",)))
            for p in ("heading", "button", *parts)
        ]
        + [f"notice.{k}_{a}" for k in ("institution", "department") for a in ("suspend", "resume")]
    )
    assert sorted(set(expected) - set(MESSAGES)) == []


# Every page in both languages ---------------------------------------------------------
@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The walk is about words, not storage: SQLite only (page tests cover both)."""
    url = f"sqlite:///{tmp_path / 'walk.db'}"
    migrate(url)
    return url


ZH_ONLY = re.compile(r'<(\w+)\b[^>]*\blang="zh-CN"[^>]*>.*?</\1>', re.S)


FIELD = re.compile(r"<(input|select|textarea)\b([^>]*)>")


def _labelled(html: str, path: str) -> None:
    """Every visible form field has a <label for> (or an aria-label)."""
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    for tag, attrs in FIELD.findall(html):
        if 'type="hidden"' in attrs or "aria-label=" in attrs:
            continue
        field_id = re.search(r'\bid="([^"]+)"', attrs)
        assert field_id and field_id.group(1) in labels, (path, tag, attrs)


def _check(html: str, lang: str, path: str) -> None:
    assert f'<html lang="{lang}">' in html, path
    _labelled(html, path)
    assert "⟦" not in html, (path, re.findall(r"⟦[^⟧]*⟧", html))
    if lang == "en":
        # Chinese may appear only inside elements marked lang="zh-CN" (the letter, the
        # switch back to Chinese).
        rest = ZH_ONLY.sub("", html.split(">", 2)[2])
        assert not CJK.search(rest), (path, CJK.findall(rest)[:10], rest[:3000])
    else:
        assert CJK.search(html), path


@dataclass
class Walk:
    people: dict[str, Person]
    params: dict[str, str]
    extra: list[tuple[str, str, int]]  # (role, path, the status it answers)


@pytest.fixture
def story(
    app: Flask,
    client: FlaskClient,
    make_bank: Callable[..., Bank],
    make_person: Callable[..., Person],
) -> Walk:
    """Data for every page: a consent of each kind, audit entries, a checkpoint."""
    bank = make_bank("walk_bank", "Walk Bank")
    ent = make_person("enterprise")
    active = request_consent(bank, client)
    ent.post(f"/enterprise/consents/{active}/approve", {"accept": "yes"})
    paused = request_consent(bank, client)
    ent.post(f"/enterprise/consents/{paused}/approve", {"accept": "yes"})
    ent.post(f"/enterprise/consents/{paused}/pause")
    pending = request_consent(bank, client)
    request_consent(bank, client, enterprise=OTHER_ENTERPRISE)
    bank.post(
        client, "/v1/verify", {"grant": "bad", "feature": "tax.paid_12m", "op": ">=", "value": 1}
    )
    # The financing pages (tests/web/test_financing_pages.py): a product, an application.
    from tests.gateway.test_financing_api import PRODUCT
    from tests.web.test_financing_pages import applied, staff

    product = bank.post(client, "/v1/products", {**PRODUCT, "name": "Walk loan"}).get_json()["id"]
    application, _ = applied(ent, product)
    settle(app)
    model = _pending_model(app)
    return Walk(
        people={
            "enterprise": ent,
            "department": make_person("department", department="tax"),
            "operator": make_person("operator"),
            "bank": staff(app, "walk_bank"),
            "products": ent,
            "accounts": ent,  # sign-up's pages (gateway.web.accounts)
        },
        params={
            "consent_id": active,
            "kind": "institution",
            "party_id": "walk_bank",
            "purpose": "grants",
            "fmt": "csv",
            "filename": "xinyi.css",
            "ref": model,
            "product_id": product,
            "application_id": application,
            # The enterprise's administrator invites a colleague (sign-up's invite page).
            "token": app.extensions["xinyi"].registry.invite(ent.login, valid_seconds=3600)[0],
        },
        extra=[
            ("enterprise", f"/enterprise/consents/{pending}", 200),
            ("enterprise", f"/enterprise/consents/{paused}/resume", 200),
            ("enterprise", f"/enterprise/consents/{active}/revoke", 200),
            ("enterprise", "/enterprise/consents/cst_nope", 404),  # the error page
            ("enterprise", "/operator/", 403),  # the wrong-role page
            ("operator", "/operator/department/tax/suspend", 200),
            ("department", "/department/?decision=refused&from=2020-01-01", 200),
            # The operator's applications, filtered (and a malformed filter said).
            ("operator", "/operator/applications?status=awaiting_consent&page=1", 200),
            ("operator", "/operator/applications?region=bad", 200),
        ],
    )


def _pending_model(app: Flask) -> str:
    """A trained model awaiting the operator's review (its review page is walked)."""
    import numpy as np

    from federated import store as model_store
    from federated.models import parse_model
    from tests.federated.conftest import model_json

    raw = {**model_json(np.random.default_rng(3)), "id": "walk_bank/risk"}
    stored = model_store.register_model(
        app.extensions["xinyi"].engine, parse_model(raw), "training:trn_walk", owner="walk_bank"
    )
    return stored.ref


ACTIONS = {"confirm": "pause", "confirm_party": "suspend"}


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_renders_completely_in_both_languages(
    app: Flask, story: Walk, lang: str
) -> None:
    params = story.params
    walked: list[tuple[str, str, int]] = []  # every page of its own role answers 200
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web") or "GET" not in (rule.methods or ()):
            continue
        # Downloads are files, not pages (an objection's attachment among them).
        downloads = (".csv", ".<fmt>", "/attachment")
        if rule.endpoint in ("web.static", "web.index") or rule.rule.endswith(downloads):
            continue
        role = rule.endpoint.removeprefix("web_").split(".")[0]
        if role == "accounts":  # sign-up and invitation pages, the enterprise's account
            role = "enterprise"
        values = {a: params[a] for a in rule.arguments if a in params}
        if "action" in rule.arguments:
            values["action"] = ACTIONS.get(rule.endpoint.split(".")[1], "pause")
        path = rule.build(values)[1]  # type: ignore[index]
        walked.append(("enterprise" if role == "web" else role, path, 200))
    walked += story.extra
    assert len(walked) >= 20
    for role, path, status in walked:
        person = story.people[role]
        sep = "&" if "?" in path else "?"
        resp = person.get(f"{path}{sep}lang={lang}")
        assert resp.status_code == status, (path, resp.status_code)
        _check(resp.get_data(as_text=True), lang, path)
