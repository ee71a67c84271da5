"""Hostile input to the parsers every outside party can reach, fuzzed with Hypothesis:
grants (the JWT parser and the claim checks), department CSV files, signed checkpoints,
cosignature lines, verifier keys and the witness's state file, JSON bodies of any
depth, verify values of any size and the numeric dates of every JWT kind (with the three
inputs that were 500s as explicit examples: nesting 50,000 deep, 10**400, ``exp`` 1e20).

Each parser may refuse, but only with a project error carrying a stable code (which the
gateway maps to a 4xx), never with another exception (a 500, or a crash of the
worker). A parser that accepts something must have been given the genuine article:
no mutation of a signed grant or checkpoint verifies.

The HE context and ciphertext parsers are fuzzed in ``tests/federated/test_he.py``
(random and mutated bytes, at the parser and at the evaluator) and the HTTP routes in
``test_schemathesis.py``; they are not repeated here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit.note import Ed25519Signer, Verifier, parse_note
from audit.witness import WitnessState
from common import json_input, jwt_rules
from common.errors import Error
from common.settings import Settings, load_settings
from common.uscc import ALPHABET
from consent import policy
from consent.errors import ConsentRefused
from consent.service import ConsentService
from keys import KeyRing
from records.catalog import Catalog, parse_value
from records.importer import check

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENTERPRISE = "91330100716105852F"


# Grants ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grant_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[ConsentService, str, str]:
    """A consent service with real keys, one genuine grant and the grants kid."""
    home = tmp_path_factory.mktemp("fuzz-instance")
    s: Settings = load_settings(
        env={"XINYI_HOME": str(home), "XINYI_KEY_PASSPHRASE": "fuzz passphrase"}
    )
    ring = KeyRing(s)
    ring.ensure_all()
    service = ConsentService(settings=s, engine=None, keys=ring)  # type: ignore[arg-type]  # no store needed
    now = int(time.time())
    request = policy.ConsentRequest(
        ENTERPRISE, "working_capital_loan", ("verify",), ("tax",), 30, 10
    )
    claims = policy.grant_claims(
        issuer=s.config.server.public_url.rstrip("/"),
        consent_id="cst_fuzz",
        request=request,
        institution="fuzz_bank",
        letter_hash="sha256:" + "0" * 64,
        now=now,
    )
    grant = ring.sign_jwt("grants", claims, {"typ": "xinyi-grant+jwt"})
    kid = json.loads(base64.urlsafe_b64decode(grant.split(".")[0] + "=="))["kid"]
    return service, grant, kid


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def forged_grants(draw: st.DrawFn, kid: str) -> str:
    header = {
        "alg": draw(st.sampled_from(["EdDSA", "none", "HS256", "RS256", "ES256", "", "eddsa"])),
        "kid": draw(st.sampled_from([kid, "", "unknown", None])),
        "typ": "xinyi-grant+jwt",
    }
    payload = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
    signature = draw(st.binary(max_size=80))
    return ".".join(
        [
            _segment(json.dumps(header).encode()),
            _segment(json.dumps(payload).encode()),
            _segment(signature),
        ]
    )


@FUZZ
@given(data=st.data())
def test_forged_and_random_grants_are_refused_with_grant_invalid(
    grant_world: tuple[ConsentService, str, str], data: st.DataObject
) -> None:
    service, genuine, kid = grant_world
    token = data.draw(st.one_of(st.text(max_size=300), forged_grants(kid), st.just(genuine + "x")))
    assume(token != genuine)
    with pytest.raises(ConsentRefused) as refused:
        service.verify_signature(token)
    assert refused.value.code == "grant_invalid"


@FUZZ
@given(position=st.integers(0, 10_000), char=st.sampled_from("AQgw_-.=xyz0189"))
def test_no_one_character_change_of_a_grant_verifies(
    grant_world: tuple[ConsentService, str, str], position: int, char: str
) -> None:
    service, genuine, _ = grant_world
    i = position % len(genuine)
    mutated = genuine[:i] + char + genuine[i + 1 :]
    code: str | None = None
    try:
        claims = service.verify_signature(mutated)
    except ConsentRefused as e:
        code = e.code
    if code is not None:
        assert code == "grant_invalid"
        return
    # Base64url has bits no decoder reads (the last character's low bits): a change
    # there decodes to the same bytes, so it is the same grant, not a forgery.
    assert claims == service.verify_signature(genuine)


@FUZZ
@given(claims=st.dictionaries(st.sampled_from(policy.GRANT_CLAIMS), json_values, max_size=12))
def test_claim_checks_refuse_any_malformed_claims_with_a_contract_code(
    grant_world: tuple[ConsentService, str, str], claims: dict[str, Any]
) -> None:
    service, _, _ = grant_world
    try:
        policy.check_claims(
            claims,
            institution="fuzz_bank",
            enterprise=ENTERPRISE,
            op="verify",
            categories=["tax"],
            now=int(time.time()),
            issuer=service.settings.config.server.public_url.rstrip("/"),
        )
    except ConsentRefused:
        return
    # Accepted: then the claims really are a grant for this request.
    assert claims["aud"] == "fuzz_bank" and claims["sub"] == ENTERPRISE
    assert "verify" in claims["ops"] and "tax" in claims["categories"]


# Department CSV files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_settings(env={}).config)


TAX_COLUMNS = ["uscc", "tax.paid_12m", "tax.revenue_12m", "tax.credit_rating", "tax.arrears"]
cells = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**12), 10**15).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["A", "B", "D", "", "NaN", "1e309", "-0", "０", "１２３", '"', "\x00"]),
    st.text(ALPHABET, min_size=18, max_size=18),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(
        st.lists(
            st.one_of(st.sampled_from(TAX_COLUMNS), st.text(max_size=10)),
            min_size=0,
            max_size=6,
        )
    )
    rows = draw(st.lists(st.lists(cells, max_size=7), max_size=8))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(sep.join(r) for r in [header, *rows])
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        # Raw bytes spliced in: BOMs, invalid UTF-8, NUL.
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data


@FUZZ
@given(data=csv_files())
def test_any_csv_is_checked_without_crashing_and_rejects_point_into_the_file(
    catalog: Catalog, data: bytes
) -> None:
    try:
        checked = check(catalog, "tax", data)
    except Error:
        return
    lines = data.count(b"\n") + data.count(b"\r") + 1
    for reject in checked.rejects:
        assert 0 <= reject.line <= lines + 1
        assert reject.code and reject.reason
    if checked.ok:
        assert not checked.rejects


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_never_a_csv_crash(catalog: Catalog, data: bytes) -> None:
    with contextlib.suppress(Error):
        check(catalog, "tax", data)


# Checkpoints, cosignatures, verifier keys and the witness state ---------------------------


@pytest.fixture(scope="module")
def checkpoint_world() -> tuple[Ed25519Signer, str]:
    signer = Ed25519Signer.generate("xinyi.gateway/audit")
    signed = sign_checkpoint(Checkpoint("xinyi.gateway/audit", 12345, b"\x07" * 32), signer)
    return signer, signed.text()


note_chars = st.sampled_from([*list("\n —-+/=0123456789abcxyzAQ"), "\r", "\x00", "é"])


@FUZZ
@given(data=st.data())
def test_no_change_to_a_signed_checkpoint_opens_with_another_meaning(
    checkpoint_world: tuple[Ed25519Signer, str], data: st.DataObject
) -> None:
    signer, note = checkpoint_world
    keys = [signer.verifier()]
    original = open_checkpoint(note, keys).checkpoint
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, 10_000), note_chars, st.integers(0, 2)), min_size=1, max_size=4
        )
    )
    mutated = note
    for position, char, kind in edits:
        i = position % (len(mutated) + 1)
        if kind == 0:
            mutated = mutated[:i] + char + mutated[i + 1 :]
        elif kind == 1:
            mutated = mutated[:i] + char + mutated[i:]
        else:
            mutated = mutated[:i] + mutated[i + 1 :]
    try:
        opened = open_checkpoint(mutated, keys)
    except Error:
        return
    assert opened.checkpoint == original  # only changes that keep the signed body


@FUZZ
@given(text=st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_random_notes_and_checkpoints_are_refused_cleanly(
    checkpoint_world: tuple[Ed25519Signer, str], text: str | bytes
) -> None:
    signer, _ = checkpoint_world
    for parse in (parse_note, lambda t: open_checkpoint(t, [signer.verifier()])):
        with contextlib.suppress(Error):
            parse(text)
    if isinstance(text, str):
        for parse_text in (Checkpoint.parse, Verifier.from_vkey):
            with contextlib.suppress(Error):
                parse_text(text)


@FUZZ
@given(line=st.text(max_size=200))
def test_random_cosignature_lines_are_refused_cleanly(line: str) -> None:
    # The gateway reads a witness's POSTed line exactly like this (AuditLog.add_cosignature).
    with contextlib.suppress(Error):
        parse_note("x\n\n" + line.rstrip("\n") + "\n")


@FUZZ
@given(
    state=st.one_of(
        st.text(max_size=200),
        st.dictionaries(
            st.sampled_from(["version", "log_vkey", "size", "root", "frontier", "checkpoint"]),
            json_values,
        ).map(json.dumps),
    )
)
def test_a_corrupt_witness_state_file_is_refused_cleanly(state: str) -> None:
    with contextlib.suppress(Error):
        WitnessState.from_json(state)


# JSON bodies, verify values and numeric dates (each was a 500) ------------------------------


@FUZZ
@given(
    depth=st.integers(0, 70_000),
    opener=st.sampled_from(["[", '{"a":']),
    noise=st.text(alphabet='[]{}",:\\ 01a', max_size=40),
)
@example(depth=50_000, opener="[", noise="")
@example(depth=50_000, opener='{"a":', noise="")
def test_json_of_any_depth_is_parsed_or_refused_with_a_code(
    depth: int, opener: str, noise: str
) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth + noise
    code: str | None = None
    try:
        json_input.loads(text)
    except Error as e:
        code = e.code
    if code is None:
        assert depth <= json_input.MAX_DEPTH
    else:
        assert code in ("json_too_deep", "invalid_json")
        assert depth > json_input.MAX_DEPTH or noise, "valid JSON within the bound was refused"


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_never_a_json_crash(data: bytes) -> None:
    with contextlib.suppress(Error):
        json_input.loads(data)


VERIFY_FEATURES = ("tax.paid_12m", "social_security.insured_employees", "tax.credit_rating")


@FUZZ
@given(
    value=st.one_of(
        st.integers(),
        st.integers(-(10**500), 10**500),
        st.floats(),
        json_values,
    )
)
@example(value=10**400)
@example(value=-(10**400))
@example(value=float("inf"))
def test_any_verify_value_is_refused_cleanly_or_in_range(catalog: Catalog, value: Any) -> None:
    for feature in VERIFY_FEATURES:
        spec = catalog.rule(feature).spec
        code: str | None = None
        try:
            parsed = parse_value(spec, value)
        except Error as e:
            code = e.code
        if code is not None:
            assert code == "invalid_value"
        elif isinstance(parsed, int | float) and not isinstance(parsed, bool):
            assert abs(parsed) <= 10**15


@FUZZ
@given(
    claims=st.dictionaries(
        st.sampled_from(jwt_rules.NUMERIC_DATES),
        st.one_of(json_values, st.integers(-(10**30), 10**30), st.floats()),
        max_size=3,
    )
)
@example(claims={"exp": 1e20})
@example(claims={"exp": 10**400})
@example(claims={"exp": True})
@example(claims={"exp": float("nan")})
def test_numeric_dates_of_every_jwt_kind_are_numbers_in_range(claims: dict[str, Any]) -> None:
    code: str | None = None
    try:
        jwt_rules.check_numeric_dates(claims, required=("exp",))
    except Error as e:
        code = e.code
    if code is not None:
        assert code == "jwt_claim_invalid"
        return
    for value in claims.values():
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert 0 <= value <= jwt_rules.MAX_NUMERIC_DATE
