"""GB 32100-2015 codes: known answers and the check-digit round trip."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import uscc

# Published codes of well-known enterprises (business licences are public documents).
KNOWN_VALID = [
    "91330100716105852F",  # 阿里巴巴（中国）有限公司
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司
    "914403001922038216",  # 华为技术有限公司
]


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_codes_validate(code: str) -> None:
    assert uscc.problem(code) is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91330100716105852G", "check digit"),
        ("9133010071610585", "18 characters"),
        ("91330100716105852f", "alphabet"),
        ("9133010071610585IF", "alphabet"),  # I is not in the alphabet
        ("9X330100716105852F", "institution type"),
        ("95330100716105852F", "institution type"),
        ("Z1330100716105852F", "alphabet"),
        ("913301A0716105852F", "alphabet"),
    ],
)
def test_invalid_codes_say_why(code: str, reason: str) -> None:
    why = uscc.problem(code)
    assert why is not None and reason in why
    with pytest.raises(uscc.InvalidUSCC) as e:
        uscc.validate(code)
    assert e.value.code == "invalid_uscc"


def test_weights_are_powers_of_three_mod_31() -> None:
    assert uscc.WEIGHTS[:6] == (1, 3, 9, 27, 19, 26)
    assert len(uscc.ALPHABET) == 31 and not set("IOZSV") & set(uscc.ALPHABET)


bodies = st.builds(
    lambda a, t, div, org: a + t + div + org,
    st.sampled_from(sorted(uscc.AUTHORITY_TYPES)).flatmap(lambda a: st.just(a)),
    st.just("1"),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(uscc.ALPHABET, min_size=9, max_size=9),
)


@given(bodies)
def test_completed_codes_round_trip(body: str) -> None:
    code = uscc.complete(body)
    assert uscc.is_valid(code)


@given(bodies, st.integers(0, 16), st.sampled_from(uscc.ALPHABET))
def test_any_single_substitution_is_caught(body: str, pos: int, char: str) -> None:
    code = uscc.complete(body)
    changed = code[:pos] + char + code[pos + 1 :]
    if changed != code:
        # Weights are distinct non-zero residues mod the prime 31: one substitution
        # always changes the weighted sum.
        assert uscc.check_digit(changed[:17]) != changed[17] or not uscc.is_valid(changed)
        assert not uscc.is_valid(changed)
