"""The synthetic city graded end to end: the grade reads only catalog features, and
grades mean something: the loan book's default rate rises from 高级 to 备选."""

from __future__ import annotations

import numpy as np
import pytest

from common.settings import ConfigFile, load_settings
from grading.engine import ALTERNATE, EXCLUDED, FIRST, HIGH, SCORE, grade
from grading.inputs import FEATURES, population
from grading.population import usable_statements
from records import synth
from records.catalog import Catalog


@pytest.fixture(scope="module")
def config() -> ConfigFile:
    return load_settings(env={}).config


@pytest.fixture(scope="module")
def city(config: ConfigFile) -> synth.City:
    return synth.generate(Catalog(config), 20_000, 11)


def test_every_input_is_a_catalog_feature(config: ConfigFile) -> None:
    catalog = Catalog(config)
    assert [f for f in FEATURES if f not in catalog.features] == []
    # ⑦ is personal information: the most restricted category.
    assert catalog.features["personal_credit.legal_representative_level"].restricted


def test_grades_order_the_loan_books_default_rate(config: ConfigFile, city: synth.City) -> None:
    uscc, columns = city.feature_columns()
    pop = population(uscc, columns, city.as_of)
    graded = grade(pop, city.as_of, config.grading)
    loans = city.tables["bank_loans"].columns
    where = {u: i for i, u in enumerate(uscc.tolist())}
    rows = np.array([where[u] for u in loans["uscc"].tolist()])
    rate = {
        g: float(loans["default"][graded.grade[rows] == g].mean())
        for g in (HIGH, FIRST, ALTERNATE, EXCLUDED)
    }
    assert rate[HIGH] < rate[FIRST] < rate[ALTERNATE] < rate[EXCLUDED], rate
    assert rate[ALTERNATE] > 3 * rate[HIGH], rate
    counts = graded.counts()
    assert all(counts[name] > 100 for name in ("高级", "一级", "备选", "不予认证")), counts
    assert (graded.method == SCORE).sum() > 1000  # the self-declared filings are used


def test_the_citys_self_declared_statements_add_up(config: ConfigFile, city: synth.City) -> None:
    uscc, columns = city.feature_columns()
    pop = population(uscc, columns, city.as_of)
    assert pop.statements is not None
    declared = ~np.isnan(pop.statements.total_assets)
    assert declared.sum() > 2000
    usable = usable_statements(pop.statements, config.grading.statements_tolerance)
    assert (usable == declared).all()
