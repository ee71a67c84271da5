"""Issue 12, attack 1 through scoring: a bank sends an encryption of zeros as its input
and reads ``intercept + Σ w_g·z_g``, the gateway's share, for every enterprise it holds
a score grant of. Mounted as that bank would, through the public API and the bank SDK,
against an approved model of the synthetic city; then the attacker's best inversion,
with more knowledge than any bank has (the whole model, weights and standardization
included, and every public feature), is shown to pin no raw value within 10% for any
enterprise. docs/leakage.md, "Scoring", states the argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bank.client import GatewayClient
from cli.demo.score import fit_logistic
from federated import he
from federated import store as fstore
from federated.models import JointModel, parse_model
from gateway.enforce import ConsentAudit
from records import store as records
from records import synth
from records.catalog import Catalog
from records.service import import_csv
from tests.gateway.conftest import Bank

CITY = 260
CLIP = 5.0
NOISE = 1e-4  # CKKS noise on a decrypted sum (federated.scoring)
RATIO = 1.1 / 0.9  # an interval [lo, hi] fits in [0.9v, 1.1v] for some v iff hi ≤ RATIO·lo


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The attack is about the arithmetic of scores, not storage: SQLite only."""
    from common.db import migrate

    url = f"sqlite:///{tmp_path / 'city.db'}"
    migrate(url)
    return url


@dataclass
class City:
    usccs: list[str]  # every enterprise the gateway holds data about
    model: JointModel
    second: JointModel  # another approved model over the same columns
    public: np.ndarray  # which gateway columns read public categories
    raw: np.ndarray  # the model inputs as the store encodes them (NaN: no value)


def _load_city(app: Flask, tmp_path: Path) -> City:
    """The synthetic city's departments load their files; the operator approves a joint
    model fitted on the loan book (standardization from the whole population)."""
    svc = app.extensions["xinyi"]
    catalog = Catalog(svc.settings.config)
    city = synth.generate(catalog, CITY, 11)
    synth.write(city, tmp_path / "city")
    for department in catalog.departments:
        path = tmp_path / "city" / f"{department}.csv"
        if path.exists():
            import_csv(
                svc.engine,
                catalog,
                department,
                path.read_bytes(),
                file_name=path.name,
                actor="test",
            )
    columns = list(synth.MODEL_COLUMNS)
    usccs = records.enterprises(svc.engine)
    raw = records.population_matrix(svc.engine, catalog, columns, as_of=date.today())
    mean, std = np.nanmean(raw, axis=0), np.nanstd(raw, axis=0)
    std[std == 0] = 1.0
    z = np.nan_to_num(np.clip((raw - mean) / std, -CLIP, CLIP))
    loans = (tmp_path / "city" / "bank_loans.csv").read_text(encoding="utf-8").splitlines()
    header = loans[0].split(",")
    label = {r[0]: float(r[header.index("default")]) for r in (x.split(",") for x in loans[1:])}
    rows = [i for i, u in enumerate(usccs) if u in label]

    def fitted(model_id: str, rows: list[int], l2: float) -> JointModel:
        w, b = fit_logistic(z[rows], np.array([label[usccs[i]] for i in rows]), l2=l2)
        return fstore.register_model(
            svc.engine,
            parse_model(
                {
                    "id": model_id,
                    "gateway_features": columns,
                    "bank_features": ["years_with_bank"],
                    "gateway_weights": w.tolist(),
                    "bank_weights": [-0.3],
                    "intercept": b,
                    "gateway_standardization": {
                        "mean": mean.tolist(),
                        "std": std.tolist(),
                        "clip": CLIP,
                    },
                }
            ),
            "operator:test",
            catalog=svc.settings.config.categories,
        )

    model = fitted("sme-city", rows, 1e-3)
    second = fitted("sme-city-b", rows[::2], 1.0)
    cats = svc.settings.config.categories
    public = np.array(
        [cats[f.partition(".")[0].removeprefix("log1p(")].visibility == "public" for f in columns]
    )
    return City(usccs, model, second, public, raw)


def _zero_input_shares(
    app: Flask, client: FlaskClient, bank: Bank, city: City
) -> tuple[dict[str, float], dict[str, float]]:
    """The attack: one score grant per enterprise, an encryption of zeros as the bank's
    input to each of the two models the cap allows, the decrypted sums read back (the
    SDK's own transport and decryption)."""
    svc = app.extensions["xinyi"]
    secret = he.SecretContext.generate(he.DEFAULT_PARAMS)
    base = svc.settings.config.server.public_url.rstrip("/")
    http = httpx.Client(base_url=base, transport=httpx.WSGITransport(app=app))
    sdk = GatewayClient(base, bank.id, bank.key, http=http)
    context = sdk.register_context(secret.public_bytes())
    categories = list(sdk.model(city.model.ref)["grant_categories"])
    shares: dict[str, float] = {}
    seconds: dict[str, float] = {}
    zeros = he.encrypt_seeded(secret, np.zeros(len(city.model.bank_features)))

    def read(grant: str, model: JointModel) -> float:
        answer, _ = sdk.score(grant, model.ref, context, zeros)
        slots = secret.decrypt(secret.ciphertext(answer))
        return float(np.sum(slots[: len(model.bank_features)]))

    with app.test_request_context():
        for u in city.usccs:
            asked = sdk.request_consent(
                u,
                purpose="working_capital_loan",
                ops=["score"],
                categories=categories,
                duration_days=30,
                max_uses=5,
            )
            row = svc.consent.act(asked["id"], "approve", u, audit=ConsentAudit(svc))
            assert row.grant_jwt is not None
            shares[u] = read(row.grant_jwt, city.model)
            seconds[u] = read(row.grant_jwt, city.second)
    http.close()
    return shares, seconds


def _raw_interval(model: JointModel, j: int, z_lo: float, z_hi: float) -> tuple[float, float]:
    """The raw values (as the store encodes them, before log1p) whose standardized,
    clipped input lies in [z_lo, z_hi]: a side at the clip is unbounded."""
    s = model.gateway_standardization
    lo = -math.inf if z_lo <= -s.clip[j] else s.mean[j] + s.std[j] * z_lo
    hi = math.inf if z_hi >= s.clip[j] else s.mean[j] + s.std[j] * z_hi
    if model.gateway_features[j].startswith("log1p("):
        lo = -math.inf if lo == -math.inf else math.expm1(lo)
        hi = math.inf if hi == math.inf else math.expm1(hi)
    return lo, hi


def pinned_within_10_percent(lo: float, hi: float) -> bool:
    """Does [lo, hi] fit inside [0.9v, 1.1v] for some v (exactly 0 when v is 0)?"""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return False
    if lo == hi == 0.0:
        return True
    return lo > 0 and hi <= RATIO * lo


@dataclass(frozen=True)
class Inversion:
    uscc: str
    column: str
    lo: float
    hi: float
    truth: float


def invert(
    city: City,
    shares: dict[str, float],
    precision: float,
    *,
    known: Callable[[int, int], bool],
) -> list[Inversion]:
    """The attacker's best inversion of one rounded share per enterprise: for every
    unknown column, the interval of values consistent with the share (rounding ± noise)
    when every other unknown column may be anything its clip allows. ``known(i, j)``
    says whether the attacker already knows column j of enterprise i (its value is then
    plugged in). With one unknown column this is exact least squares; with several it is
    the exact feasible set of the linear system."""
    m = city.model
    w = np.asarray(m.gateway_weights)
    clip = np.asarray(m.gateway_standardization.clip)
    out: list[Inversion] = []
    for i, u in enumerate(city.usccs):
        z = m.standardized_gateway(list(city.raw[i]))
        unknown = np.array([not known(i, j) for j in range(len(w))])
        rest = m.intercept + float(np.dot(w[~unknown], z[~unknown]))
        half = precision / 2 + NOISE
        for j in np.flatnonzero(unknown):
            if np.isnan(city.raw[i, j]) or w[j] == 0:
                continue  # no value to find
            others = unknown.copy()
            others[j] = False
            slack = float(np.sum(np.abs(w[others]) * clip[others]))
            a = (shares[u] - rest - half - slack) / w[j]
            b = (shares[u] - rest + half + slack) / w[j]
            z_lo, z_hi = max(min(a, b), -clip[j]), min(max(a, b), clip[j])
            assert z_lo <= z[j] + 1e-6 and z[j] - 1e-6 <= z_hi  # the truth is consistent
            lo, hi = _raw_interval(m, int(j), z_lo, z_hi)
            out.append(Inversion(u, m.gateway_features[j], lo, hi, float(city.raw[i, j])))
    return out


def invert_two(
    city: City, shares: dict[str, float], seconds: dict[str, float], precision: float
) -> list[Inversion]:
    """The same feasible-set inversion from two rounded shares (two models, the cap):
    for each unknown (non-public) column the exact min and max over the polytope
    {z : |w·z − S| ≤ p/2, |w'·z − S'| ≤ p/2, |z_k| ≤ clip} (a linear program each)."""
    from scipy.optimize import linprog

    m, m2 = city.model, city.second
    w, w2 = np.asarray(m.gateway_weights), np.asarray(m2.gateway_weights)
    clip = np.asarray(m.gateway_standardization.clip)
    half = precision / 2 + NOISE
    out: list[Inversion] = []
    for i, u in enumerate(city.usccs):
        z = m.standardized_gateway(list(city.raw[i]))
        unknown = ~city.public
        idx = np.flatnonzero(unknown)
        s1 = shares[u] - m.intercept - float(np.dot(w[~unknown], z[~unknown]))
        s2 = seconds[u] - m2.intercept - float(np.dot(w2[~unknown], z[~unknown]))
        a = np.vstack([w[idx], -w[idx], w2[idx], -w2[idx]])
        b = np.array([s1 + half, -(s1 - half), s2 + half, -(s2 - half)])
        bounds = [(-clip[k], clip[k]) for k in idx]
        for pos, j in enumerate(idx):
            if np.isnan(city.raw[i, j]):
                continue
            c = np.zeros(len(idx))
            c[pos] = 1.0
            lo = linprog(c, A_ub=a, b_ub=b, bounds=bounds, method="highs")
            hi = linprog(-c, A_ub=a, b_ub=b, bounds=bounds, method="highs")
            assert lo.status == 0 and hi.status == 0  # the truth is feasible
            r_lo, r_hi = _raw_interval(m, int(j), float(lo.fun), float(-hi.fun))
            out.append(Inversion(u, m.gateway_features[j], r_lo, r_hi, float(city.raw[i, j])))
    return out


# Continuous amounts: where rounding alone must stop an attacker who knows the rest.
AMOUNTS = {
    "log1p(tax.paid_12m)",
    "log1p(tax.revenue_12m)",
    "log1p(housing_fund.paid_12m)",
    "log1p(utilities.power_kwh_12m)",
}


def test_zero_input_scores_of_an_approved_model_pin_no_raw_value_within_10_percent(
    app: Flask, client: FlaskClient, make_bank: Callable[..., Bank], tmp_path: Path
) -> None:
    city = _load_city(app, tmp_path)
    bank = make_bank("curious_bank")
    shares, seconds = _zero_input_shares(app, client, bank, city)
    precision = app.extensions["xinyi"].settings.config.scoring.share_precision
    assert len(shares) == len(city.usccs) >= 200

    # What the bank read is the rounded share: a multiple of the precision (± noise).
    for s in shares.values():
        assert abs(s / precision - round(s / precision)) * precision < NOISE

    # The bank knows the model and every public feature; the non-public ones are what it
    # is after. Every interval it can derive is wider than ±10%.
    realistic = invert(city, shares, precision, known=lambda _i, j: bool(city.public[j]))
    assert len(realistic) > 5 * len(city.usccs)
    pinned = [x for x in realistic if pinned_within_10_percent(x.lo, x.hi)]
    assert pinned == []
    # Two models (all the cap allows) over the same columns: still nothing pinned.
    both = invert_two(city, shares, seconds, precision)
    assert len(both) == len(realistic)
    assert [x for x in both if pinned_within_10_percent(x.lo, x.hi)] == []

    # Stronger than any bank: it knows every input but one amount. The rounding is what
    # stops it now (without rounding the share gives the amount exactly).
    amounts = [j for j, c in enumerate(city.model.gateway_features) if c in AMOUNTS]
    assert len(amounts) == len(AMOUNTS)
    for j in amounts:
        column = city.model.gateway_features[j]
        found = invert(city, shares, precision, known=partial(_all_but, j))
        assert found, column
        assert [x for x in found if pinned_within_10_percent(x.lo, x.hi)] == [], column

    # The same attacker against exact shares (the code before this bound) pins them.
    exact = {u: city.model.gateway_share(list(city.raw[i])) for i, u in enumerate(city.usccs)}
    j = amounts[int(np.argmax(np.abs(np.asarray(city.model.gateway_weights)[amounts])))]
    found = invert(city, exact, 0.0, known=lambda _i, k: k != j)
    assert sum(pinned_within_10_percent(x.lo, x.hi) for x in found) > 0.9 * len(found)


def _all_but(unknown: int, _row: int, column: int) -> bool:
    """The attacker knows every column but ``unknown``."""
    return column != unknown
