"""The legal representative's id: GB 11643-1999 shape and check character, and the
keyed hash it is stored and compared as (one function for import and sign-up)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from records import identity
from records.pseudonyms import legal_rep_id_hash

KEY = b"k" * 32
# GB 11643-1999's worked example (Beijing, 1949-12-31): check character X.
EXAMPLE = "11010519491231002X"


def test_the_standard_example_validates_and_its_check_character_is_computed() -> None:
    assert identity.resident_id_check(EXAMPLE[:17]) == "X"
    assert identity.validate_resident_id(EXAMPLE) == EXAMPLE
    assert identity.validate_resident_id(" 110105 19491231 002x ") == EXAMPLE


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("110105194912310021", "check character"),
        ("11010519491231002", "18 characters"),
        ("1101051949123100XX", "17 digits"),
        ("110105194913310025", "date of birth"),
    ],
)
def test_a_bad_id_is_refused_without_echoing_it(raw: str, why: str) -> None:
    with pytest.raises(identity.InvalidResidentId) as e:
        identity.validate_resident_id(raw)
    assert e.value.code == "invalid_resident_id"
    assert why in e.value.message and raw not in e.value.message


@given(
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    st.text(alphabet="0123456789", min_size=3, max_size=3),
)
def test_every_body_with_its_check_character_round_trips(
    region: str, born: date, sequence: str
) -> None:
    body = region + born.strftime("%Y%m%d") + sequence
    full = body + identity.resident_id_check(body)
    assert identity.resident_id_problem(full) is None
    assert identity.validate_resident_id(full.lower()) == full
    # Any other check character is refused.
    for other in "0123456789X":
        if other != full[-1]:
            assert identity.resident_id_problem(body + other) is not None


def test_sign_up_hashes_with_the_one_function_of_the_import() -> None:
    h = legal_rep_id_hash(KEY, EXAMPLE)
    assert re.fullmatch("[0-9a-f]{64}", h) and EXAMPLE not in h
    assert legal_rep_id_hash(KEY, " 11010519491231002x") == h  # the typed form
    assert legal_rep_id_hash(b"j" * 32, EXAMPLE) != h
    assert identity.ID_FEATURE == "registration.legal_representative_id"


def test_a_match_needs_both_the_name_and_the_id() -> None:
    stored = legal_rep_id_hash(KEY, EXAMPLE)

    def match(name: str, raw: str, rec_name: object = "张三", rec_id: object = stored) -> bool:
        return identity.legal_rep_matches(
            KEY, name=name, raw_id=raw, recorded_name=rec_name, recorded_id_hash=rec_id
        )

    assert match("张三", EXAMPLE)
    assert match(" 张 三 ", EXAMPLE.lower())  # spacing and case are not identity
    assert not match("李四", EXAMPLE)
    assert not match("张三", "110105194912310021")
    assert not match("张三", EXAMPLE, rec_id=None)  # no registration record: no real name
    assert not match("张三", EXAMPLE, rec_name=None)
    assert not match("", EXAMPLE, rec_name="")
