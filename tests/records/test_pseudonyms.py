"""The legal representative's id is stored only as a keyed hash: the import file holds
the raw id, the store HMAC-SHA256 under the key store's pseudonym key; without the key
such a file is refused and nothing is stored; a bad id is named by line, never echoed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from common.settings import Settings
from keys import KeyRing
from records import store, synth
from records.catalog import Catalog, CellProblem
from records.pseudonyms import LEGAL_REP_ID, legal_rep_id_hash, normalize_id
from records.service import ImportRejected, import_csv

KEY = bytes(range(32))
RAW = "33010619800101123X"
CODE = "91330100716105852F"


def test_the_hash_is_hmac_sha256_of_the_normalized_id() -> None:
    expected = hmac.new(KEY, RAW.encode(), hashlib.sha256).hexdigest()
    assert legal_rep_id_hash(KEY, RAW) == expected
    assert legal_rep_id_hash(KEY, " 33010619800101123x ") == expected
    assert legal_rep_id_hash(bytes(32), RAW) != expected
    with pytest.raises(CellProblem) as e:
        normalize_id("not an id!")
    assert e.value.code == "wrong_type" and "not an id!" not in e.value.reason
    with pytest.raises(ValueError, match="at least 32 bytes"):
        legal_rep_id_hash(b"short", RAW)


def test_synthetic_ids_carry_their_gb_11643_check_character() -> None:
    # GB 11643-1999 worked example: 11010519491231002X.
    assert synth.resident_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"


def _rows(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(v) for v in conn.execute(sa.select(store.record_rows.c.values_json)).scalars()]


def test_an_import_stores_only_the_keyed_hash(engine: Engine, settings: Settings) -> None:
    catalog = Catalog(settings.config)
    data = f"uscc,{LEGAL_REP_ID}\n{CODE},{RAW}\n".encode()
    # Without the key: refused, nothing stored.
    with pytest.raises(ImportRejected) as e:
        import_csv(engine, catalog, "market_regulation", data, file_name="ids.csv", actor="t")
    assert [r.code for r in e.value.all_rejects] == ["unkeyed_identifier"]
    assert _rows(engine) == []
    import_csv(
        engine,
        catalog,
        "market_regulation",
        data,
        file_name="ids.csv",
        actor="t",
        pseudonym_key=KEY,
    )
    stored = store.current_values(engine, CODE, [LEGAL_REP_ID])[LEGAL_REP_ID]
    assert stored == legal_rep_id_hash(KEY, RAW)
    assert not any(RAW in row or RAW.lower() in row for row in _rows(engine))
    # A bad id is named by line and column, its value never echoed.
    bad = f"uscc,{LEGAL_REP_ID}\n{CODE},12345\n".encode()
    with pytest.raises(ImportRejected) as e:
        import_csv(
            engine,
            catalog,
            "market_regulation",
            bad,
            file_name="b.csv",
            actor="t",
            pseudonym_key=KEY,
        )
    (reject,) = e.value.all_rejects
    assert (reject.line, reject.column, reject.code) == (2, LEGAL_REP_ID, "wrong_type")
    assert "12345" not in reject.reason


def test_the_key_store_keeps_one_pseudonym_key_for_ever(settings: Settings, tmp_path: Path) -> None:
    ring = KeyRing(settings)
    ring.ensure_all()
    first = ring.pseudonym_key(LEGAL_REP_ID)
    assert len(first) == 32
    assert KeyRing(settings).pseudonym_key(LEGAL_REP_ID) == first  # another worker
    ring.rotate("grants")
    assert KeyRing(settings).pseudonym_key(LEGAL_REP_ID) == first
    assert ring.pseudonym_key("another label") != first
    published = {k["xinyi_purpose"] for k in ring.jwks()["keys"]}
    assert "pseudonyms" not in published
