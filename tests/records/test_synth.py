"""The synthetic city: deterministic, valid, importable, and informative: department
data adds to what the bank knows."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import Engine

from common import uscc
from common.db import make_engine, migrate
from records import store, synth
from records.catalog import Catalog
from records.importer import check
from records.service import import_csv


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_same_seed_writes_the_same_bytes(catalog: Catalog, tmp_path: Path) -> None:
    synth.write(synth.generate(catalog, 300, 42), tmp_path / "a")
    synth.write(synth.generate(catalog, 300, 42), tmp_path / "b")
    synth.write(synth.generate(catalog, 300, 43), tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["tax.csv"] != digest(tmp_path / "c")["tax.csv"]


def test_every_department_file_passes_the_import_check(catalog: Catalog, tmp_path: Path) -> None:
    synth.write(synth.generate(catalog, 2000, 5), tmp_path)
    for department in catalog.departments:
        data = (tmp_path / f"{department}.csv").read_bytes()
        result = check(catalog, department, data)
        assert result.ok, (department, result.rejects[:5])
        if department == "self_declared":
            # Statements are filed voluntarily (JY 附件2 三.3): a share of the city.
            assert 200 < result.row_count < 1200
        else:
            assert result.row_count > 1900
        own = set(catalog.department_features(department))
        # Keyed-hash ids come in a file of their own (synth.LEGAL_IDS_TABLE).
        keyed = {f for f in own if catalog.features[f].spec.keyed_hash}
        assert set(result.features) == own - keyed  # the generator draws every catalog feature
    ids = (tmp_path / f"{synth.LEGAL_IDS_TABLE}.csv").read_bytes()
    keyed = {f for f, r in catalog.features.items() if r.spec.keyed_hash}
    assert keyed == {"registration.legal_representative_id"}
    result = check(catalog, "market_regulation", ids, keyed={f: str.lower for f in keyed})
    assert result.ok and result.row_count == 2000 and set(result.features) == keyed


def test_the_city_looks_like_a_city(catalog: Catalog) -> None:
    city = synth.generate(catalog, 5000, 9)
    reg = city.tables["market_regulation"].columns
    codes = reg["uscc"].tolist()
    assert len(set(codes)) == len(codes) and all(uscc.is_valid(c) for c in codes)
    sections, counts = np.unique(reg["registration.industry"], return_counts=True)
    share = dict(zip(sections.tolist(), (counts / counts.sum()).tolist(), strict=True))
    assert share["F"] > share["C"] > share["I"] > 0.03  # retail, manufacturing, IT
    sizes = reg["registration.size"].tolist()
    assert sizes.count("micro") > sizes.count("small") > sizes.count("medium") > 0
    tax = city.tables["tax"].columns
    assert (tax["tax.paid_12m"] < tax["tax.revenue_12m"]).all()
    assert 0.03 < city.default_rate < 0.2
    loans = city.tables["bank_loans"].columns
    assert tuple(city.tables["bank_loans"].columns) == synth.BANK_COLUMNS
    assert set(loans["uscc"].tolist()) <= set(codes)


def test_seasons_make_slack_months_riskier_for_utility_payments(catalog: Catalog) -> None:
    # Construction stops around the Spring Festival: its enterprises pay late more often
    # than IT firms whose activity is flat, at the same size.
    city = synth.generate(catalog, 20_000, 3)
    reg = city.tables["market_regulation"].columns
    util = city.tables["utilities"].columns
    section = dict(zip(reg["uscc"].tolist(), reg["registration.industry"].tolist(), strict=True))
    late = dict(
        zip(util["uscc"].tolist(), util["utilities.late_payments_12m"].tolist(), strict=True)
    )
    mean = {s: np.mean([v for u, v in late.items() if section[u] == s]) for s in ("E", "I")}
    assert mean["E"] > 1.3 * mean["I"]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'city.db'}"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_a_joint_model_beats_a_bank_only_model(
    catalog: Catalog, tmp_path: Path, sqlite_engine: Engine
) -> None:
    city = synth.generate(catalog, 4000, 11)
    synth.write(city, tmp_path)
    for department in catalog.departments:
        data = (tmp_path / f"{department}.csv").read_bytes()
        import_csv(sqlite_engine, catalog, department, data, file_name="x", actor="test")
    with (tmp_path / "bank_loans.csv").open(encoding="utf-8") as fh:
        loans = list(csv.DictReader(fh))
    codes = [r["uscc"] for r in loans]
    y = np.array([int(r["default"]) for r in loans])
    bank = np.array(
        [[float(r[c]) for c in synth.BANK_COLUMNS[1:-1]] for r in loans], dtype=np.float64
    )
    bank[:, 1] = np.log1p(bank[:, 1])  # avg_balance
    bank[:, 4] = np.log1p(bank[:, 4])  # loan_amount
    present, gov = store.feature_matrix(
        sqlite_engine, catalog, codes, list(synth.MODEL_COLUMNS), as_of=city.as_of
    )
    assert present.all()  # every borrower is known to every department
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    def auc(x: np.ndarray) -> float:
        scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
        return float(roc_auc_score(y, scores))

    bank_only, joint = auc(bank), auc(np.hstack([bank, gov]))
    assert bank_only > 0.6  # the bank's own data is informative...
    assert joint - bank_only >= 0.03, (bank_only, joint)  # ...department data adds to it
