"""federated.he: public contexts carry no secret, untrusted bytes become our errors."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import InvalidInput, TooLarge
from federated import he

P = he.DEFAULT_PARAMS


def vector_wire(sizes: list[int], blobs: list[bytes], scale: float = P.scale) -> bytes:
    """A TenSEAL CKKSVectorProto built by hand (to craft what TenSEAL never writes)."""
    packed = b"".join(he._encode_varint(s) for s in sizes)
    out = he._proto_bytes(1, packed) if sizes else b""
    for blob in blobs:
        out += he._proto_bytes(2, blob)
    return out + b"\x19" + struct.pack("<d", scale)


def seal_blob(ct_bytes: bytes) -> bytes:
    return next(v for n, _, v in he._fields(ct_bytes) if n == 2)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ct_bytes(secret: he.SecretContext) -> bytes:
    return secret.encrypt([1.0, 2.0, 3.0]).to_bytes()


# Contexts ---------------------------------------------------------------------------------


def test_public_context_round_trips_with_its_parameters(secret: he.SecretContext) -> None:
    public = he.PublicContext.load(secret.public_bytes(), expected=P, allow_evaluation_keys=False)
    assert public.params == P
    assert public.params.as_dict() == {
        "poly_modulus_degree": 8192,
        "coeff_mod_bit_sizes": [60, 40, 60],
        "global_scale_bits": 40,
    }
    again = he.PublicContext.load(public.to_bytes(), expected=P, allow_evaluation_keys=False)
    assert again.params == P


def test_a_context_with_a_secret_key_is_refused(secret: he.SecretContext) -> None:
    with pytest.raises(he.ContextHasSecretKey) as e:
        he.PublicContext.load(secret.secret_bytes(), max_bytes=1 << 23)
    assert e.value.code == "context_has_secret_key"


def test_a_context_with_evaluation_keys_is_refused_when_asked(secret: he.SecretContext) -> None:
    fields = list(he._fields(secret.public_bytes()))
    public_part = next(v for n, _, v in fields if n == 2)
    assert isinstance(public_part, bytes)
    parms = next(v for n, _, v in fields if n == 1)
    assert isinstance(parms, bytes)
    fake_keys = parms  # any SEAL object: the check is that relin keys are present at all
    crafted = he._proto_bytes(1, parms) + he._proto_bytes(
        2, public_part + he._proto_bytes(4, fake_keys)
    )
    with pytest.raises(he.ContextHasEvaluationKeys):
        he.PublicContext.load(crafted, allow_evaluation_keys=False)


def test_a_context_with_other_parameters_is_refused(secret: he.SecretContext) -> None:
    other = he.SecretContext.generate(he.CKKSParams(8192, (60, 40, 40, 60), 40))
    with pytest.raises(he.WrongParameters) as e:
        he.PublicContext.load(other.public_bytes(), expected=P)
    assert e.value.code == "context_parameters"


def test_oversized_and_empty_contexts_are_refused(secret: he.SecretContext) -> None:
    data = secret.public_bytes()
    with pytest.raises(TooLarge):
        he.PublicContext.load(data, max_bytes=len(data) - 1)
    with pytest.raises(he.InvalidContext):
        he.PublicContext.load(b"")


def test_a_context_without_a_public_key_is_refused(secret: he.SecretContext) -> None:
    parms = next(v for n, _, v in he._fields(secret.public_bytes()) if n == 1)
    assert isinstance(parms, bytes)
    with pytest.raises(he.InvalidContext, match="no public key"):
        he.PublicContext.load(he._proto_bytes(1, parms), require_public_key=True)
    symmetric = he.SecretContext.generate(P, symmetric=True).public_bytes()
    with pytest.raises(he.InvalidContext, match="no public key"):
        he.PublicContext.load(symmetric, require_public_key=True)
    assert he.PublicContext.load(symmetric).params == P  # computing needs no public key


# Ciphertexts ----------------------------------------------------------------------------


def test_fresh_ciphertext_is_accepted_and_computes(
    secret: he.SecretContext, public: he.PublicContext, ct_bytes: bytes
) -> None:
    ct = public.ciphertext(ct_bytes, size=3, fresh=True)
    out = ct.mul_plain([2.0, -1.0, 0.5]).add_plain([1.0, 1.0, 1.0])
    got = secret.decrypt(secret.ciphertext(out.to_bytes()))
    np.testing.assert_allclose(got, [3.0, -1.0, 2.5], atol=1e-5)


def test_seeded_encryption_is_half_the_bytes_and_decrypts(
    secret: he.SecretContext, public: he.PublicContext, ct_bytes: bytes
) -> None:
    seeded = he.encrypt_seeded(secret, [1.0, 2.0, 3.0])
    assert len(seeded) < 0.6 * len(ct_bytes)
    ct = public.ciphertext(seeded, size=3, fresh=True)
    got = secret.decrypt(secret.ciphertext(ct.mul_scalar(2.0).to_bytes()))
    np.testing.assert_allclose(got, [2.0, 4.0, 6.0], atol=1e-5)


def test_a_computed_ciphertext_is_not_fresh(public: he.PublicContext, ct_bytes: bytes) -> None:
    used = public.ciphertext(ct_bytes).mul_scalar(2.0).to_bytes()
    public.ciphertext(used)  # readable
    with pytest.raises(he.InvalidCiphertext, match="fresh"):
        public.ciphertext(used, fresh=True)


def test_the_size_must_be_the_expected_one(public: he.PublicContext, ct_bytes: bytes) -> None:
    with pytest.raises(he.InvalidCiphertext, match="expected 4"):
        public.ciphertext(ct_bytes, size=4)


def test_oversized_ciphertext_is_refused(public: he.PublicContext, ct_bytes: bytes) -> None:
    with pytest.raises(TooLarge):
        public.ciphertext(ct_bytes, max_bytes=1024)


@pytest.mark.parametrize(
    "case",
    [
        "no_sizes",
        "zero_size",
        "too_many_sizes",
        "too_many_cts",
        "huge_size",
        "nan_scale",
        "other_scale",
        "partial_first_chunk",
        "not_seal",
        "seal_size_lies",
    ],
)
def test_vectors_that_would_crash_tenseal_are_refused(
    public: he.PublicContext, ct_bytes: bytes, case: str
) -> None:
    blob = seal_blob(ct_bytes)
    crafted = {
        # TenSEAL dereferences a missing chunk size: SIGSEGV without the pre-check.
        "no_sizes": vector_wire([], [blob]),
        "zero_size": vector_wire([0], [blob]),
        "too_many_sizes": vector_wire([3, 3], [blob]),
        "too_many_cts": vector_wire([3], [blob, blob]),
        "huge_size": vector_wire([100_000], [blob]),
        "nan_scale": vector_wire([3], [blob], float("nan")),
        "other_scale": vector_wire([3], [blob], 2.0**30),
        "partial_first_chunk": vector_wire([3, 3], [blob, blob]),
        "not_seal": vector_wire([3], [b"\x00" * 64]),
        "seal_size_lies": vector_wire([3], [blob[:8] + struct.pack("<Q", 10**9) + blob[16:]]),
    }[case]
    with pytest.raises(he.InvalidCiphertext):
        public.ciphertext(crafted)


def test_the_worker_survives_crafted_vectors(tmp_path: object) -> None:
    """The same crafted vectors in a separate process: it must exit normally (a SIGSEGV
    would show as a negative return code)."""
    script = textwrap.dedent(
        """
        import struct
        from federated import he
        s = he.SecretContext.generate(he.DEFAULT_PARAMS)
        pub = he.PublicContext.load(s.public_bytes())
        ct = s.encrypt([1.0, 2.0, 3.0]).to_bytes()
        blob = next(v for n, _, v in he._fields(ct) if n == 2)
        def wire(sizes, blobs):
            packed = b"".join(he._encode_varint(x) for x in sizes)
            out = he._proto_bytes(1, packed) if sizes else b""
            for b in blobs:
                out += he._proto_bytes(2, b)
            return out + b"\\x19" + struct.pack("<d", 2.0**40)
        refused = 0
        for sizes, blobs in [([], [blob]), ([0], [blob]), ([3], [blob, blob]), ([3, 3], [blob])]:
            try:
                v = pub.ciphertext(wire(sizes, blobs))
                v.mul_plain([1.0] * v.size).add_plain([0.0] * v.size)
            except he.InvalidCiphertext:
                refused += 1
        print(refused)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4"


# Hypothesis: untrusted bytes never escape as anything but our errors -------------------

_fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


@_fuzz
@given(st.binary(max_size=2048))
def test_random_bytes_are_never_a_ciphertext_crash(public: he.PublicContext, data: bytes) -> None:
    with contextlib.suppress(InvalidInput, TooLarge):
        public.ciphertext(data)


@_fuzz
@given(
    edits=st.lists(st.tuples(st.integers(0, 300_000), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, 300_000),
)
def test_mutated_ciphertexts_fail_cleanly(
    public: he.PublicContext, ct_bytes: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = _mutate(ct_bytes, edits, cut)
    try:
        ct = public.ciphertext(data)
        ct.mul_plain([1.5] * ct.size).add_plain([0.25] * ct.size).to_bytes()
    except (InvalidInput, TooLarge):
        pass


@settings(max_examples=25, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.none() | st.integers(0, 400_000),
)
def test_mutated_contexts_fail_cleanly(
    secret: he.SecretContext, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = _mutate(secret.public_bytes(), edits, cut)
    with contextlib.suppress(InvalidInput, TooLarge):
        he.PublicContext.load(data, expected=P)


@_fuzz
@given(st.binary(max_size=2048))
def test_random_bytes_are_never_a_context_crash(data: bytes) -> None:
    with contextlib.suppress(InvalidInput, TooLarge):
        he.PublicContext.load(data)


def test_plaintext_operands_are_checked(public: he.PublicContext, ct_bytes: bytes) -> None:
    ct = public.ciphertext(ct_bytes)
    with pytest.raises(InvalidInput, match="plaintext"):
        ct.mul_plain([1.0, 2.0])
    with pytest.raises(InvalidInput, match="finite"):
        ct.add_plain([1.0, float("inf"), 0.0])
    with pytest.raises(InvalidInput, match="finite"):
        ct.mul_scalar(float("nan"))


# The gateway's evaluator (SEAL directly) -------------------------------------------------


@pytest.fixture(scope="module")
def ev() -> he.Evaluator:
    return he.Evaluator(P)


def test_the_evaluator_reads_fresh_ciphertexts_and_computes(
    secret: he.SecretContext, ev: he.Evaluator, ct_bytes: bytes
) -> None:
    for data in (ct_bytes, he.encrypt_seeded(secret, [1.0, 2.0, 3.0])):
        ct = ev.ciphertext(data, size=3)
        product = ev.rescale(ev.multiply(ct, ev.weights([2.0, -1.0, 0.5])))
        out = ev.to_bytes(ev.add_values(product, [1.0, 1.0, 1.0]))
        got = secret.decrypt(secret.ciphertext(out))
        np.testing.assert_allclose(got, [3.0, -1.0, 2.5], atol=1e-5)
    assert ev.weights([2.0, -1.0, 0.5]) is ev.weights([2.0, -1.0, 0.5])


def test_the_evaluator_refuses_what_is_not_fresh_or_not_the_size(
    secret: he.SecretContext, public: he.PublicContext, ev: he.Evaluator, ct_bytes: bytes
) -> None:
    with pytest.raises(he.InvalidCiphertext, match="expected 4"):
        ev.ciphertext(ct_bytes, size=4)
    used = public.ciphertext(ct_bytes).mul_scalar(2.0).to_bytes()
    with pytest.raises(he.InvalidCiphertext, match="fresh"):
        ev.ciphertext(used, size=3)
    with pytest.raises(TooLarge):
        ev.ciphertext(ct_bytes, size=3, max_bytes=1000)
    blob = seal_blob(ct_bytes)
    for crafted in (
        vector_wire([], [blob]),
        vector_wire([3], [blob, blob]),
        vector_wire([3], [blob[:-100]]),
    ):
        with pytest.raises(he.InvalidCiphertext):
            ev.ciphertext(crafted, size=3)


def test_the_evaluator_refuses_a_ciphertext_under_other_parameters(ct_bytes: bytes) -> None:
    other = he.Evaluator(he.CKKSParams(8192, (60, 40, 40, 60), 40))
    with pytest.raises(he.InvalidCiphertext):
        other.ciphertext(ct_bytes, size=3)


def test_the_evaluator_refuses_unusable_parameters() -> None:
    with pytest.raises(he.WrongParameters):
        he.Evaluator(he.CKKSParams(1024, (60, 60, 60), 40))


@_fuzz
@given(
    edits=st.lists(st.tuples(st.integers(0, 300_000), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, 300_000),
)
def test_mutated_ciphertexts_fail_cleanly_at_the_evaluator(
    ev: he.Evaluator, ct_bytes: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = _mutate(ct_bytes, edits, cut)
    with contextlib.suppress(InvalidInput, TooLarge):
        ct = ev.ciphertext(data, size=3)
        ev.to_bytes(ev.add_values(ev.rescale(ev.multiply(ct, ev.encode([1.0, 2.0]))), [0, 0, 0]))
