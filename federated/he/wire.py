"""Untrusted bytes, checked in Python before TenSEAL or SEAL sees them, and the small
encoders the package writes its own frames with.

TenSEAL trusts the chunk sizes of a serialized vector and dereferences past the end of
its chunk list when they disagree with the ciphertexts (a zero or missing size crashes the
process with SIGSEGV), so a vector reaches TenSEAL only with one size per ciphertext, each
within the slot count, and the context's scale."""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InvalidInput
from federated.he.params import (
    CKKSParams,
    ContextHasEvaluationKeys,
    ContextHasSecretKey,
    InvalidContext,
)


def _as_list(values: Sequence[float] | np.ndarray) -> list[float]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("plaintext values must be finite", code="invalid_plaintext")
    out: list[float] = arr.tolist()
    return out


# Untrusted wire formats --------------------------------------------------------------
#
# TenSEAL serializes a vector as the protobuf ``CKKSVectorProto`` (field 1: repeated
# uint32 chunk sizes, 2: repeated bytes SEAL ciphertexts, 3: double scale) and a context
# as ``TenSEALContextProto`` (1: bytes SEAL parameters, 2: public part {1 public key,
# 2 flags, 3 scale, 4 relin keys, 5 Galois keys}, 3: private part {1 secret key, ...},
# 4: encryption type). The reader below only understands what those messages use.

_SEAL_MAGIC = 0xA15E
_SEAL_HEADER = struct.Struct("<HBBBBHQ")  # magic, header size, major, minor, compr, -, size


class _Malformed(Exception):
    """The bytes are not the protobuf message we expect (internal)."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if i >= len(buf):
            raise _Malformed("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
    raise _Malformed("varint longer than 64 bits")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message, strictly."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, wire, value
        elif wire == 1:
            if i + 8 > len(buf):
                raise _Malformed("truncated fixed64")
            yield number, wire, buf[i : i + 8]
            i += 8
        elif wire == 2:
            length, i = _varint(buf, i)
            if i + length > len(buf):
                raise _Malformed("truncated length-delimited field")
            yield number, wire, buf[i : i + length]
            i += length
        elif wire == 5:
            if i + 4 > len(buf):
                raise _Malformed("truncated fixed32")
            yield number, wire, buf[i : i + 4]
            i += 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        value, i = _varint(buf, i)
        out.append(value)
    return out


def _check_seal_header(blob: bytes, what: str) -> None:
    """A SEAL serialization starts with a 16-byte header whose size field is the whole
    object; anything else is refused before SEAL parses it."""
    if len(blob) < _SEAL_HEADER.size:
        raise _Malformed(f"{what}: shorter than a SEAL header")
    magic, header_size, major, _minor, compr, _reserved, size = _SEAL_HEADER.unpack_from(blob)
    if magic != _SEAL_MAGIC or header_size != _SEAL_HEADER.size or major != 4:
        raise _Malformed(f"{what}: not a SEAL 4 object")
    if compr not in (0, 1, 2):
        raise _Malformed(f"{what}: unknown compression mode")
    if size != len(blob):
        raise _Malformed(f"{what}: the SEAL header claims {size} bytes, {len(blob)} present")


@dataclass(frozen=True)
class _VectorWire:
    sizes: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]
    scale: float


def _check_vector_wire(data: bytes, params: CKKSParams) -> _VectorWire:
    sizes: list[int] = []
    blobs: list[bytes] = []
    scale: float | None = None
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2 and isinstance(value, bytes):
            sizes.extend(_packed_varints(value))
        elif number == 1 and wire == 0 and isinstance(value, int):
            sizes.append(value)
        elif number == 2 and wire == 2 and isinstance(value, bytes):
            blobs.append(value)
        elif number == 3 and wire == 1 and isinstance(value, bytes):
            scale = struct.unpack("<d", value)[0]
        else:
            raise _Malformed(f"unexpected field {number} (wire type {wire})")
    if not blobs:
        raise _Malformed("no ciphertext")
    if len(sizes) != len(blobs):
        raise _Malformed(f"{len(sizes)} chunk sizes for {len(blobs)} ciphertexts")
    if any(not 0 < s <= params.slots for s in sizes):
        raise _Malformed(f"a chunk size is outside 1..{params.slots}")
    if any(s != params.slots for s in sizes[:-1]):
        raise _Malformed("only the last chunk may be partly filled")
    if scale != params.scale:
        raise _Malformed(f"the vector's scale is not 2^{params.global_scale_bits}")
    for blob in blobs:
        _check_seal_header(blob, "ciphertext")
    return _VectorWire(tuple(sizes), tuple(blobs), scale)


def _check_context_wire(
    data: bytes, *, allow_evaluation_keys: bool, require_public_key: bool
) -> None:
    parms: bytes | None = None
    public: bytes | None = None
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2 and isinstance(value, bytes):
            parms = value
        elif number == 2 and wire == 2 and isinstance(value, bytes):
            public = value
        elif number == 3 and wire == 2 and isinstance(value, bytes):
            for sub, sub_wire, sub_value in _fields(value):
                if sub == 1 and sub_wire == 2 and sub_value:
                    raise ContextHasSecretKey(
                        "the context carries a secret key; send the public one"
                    )
        elif number == 4 and wire == 0:
            continue
        else:
            raise _Malformed(f"unexpected context field {number} (wire type {wire})")
    if parms is None:
        raise _Malformed("no encryption parameters")
    _check_seal_header(parms, "encryption parameters")
    has_public_key = False
    for number, wire, value in _fields(public or b""):
        if number == 1 and wire == 2 and isinstance(value, bytes) and value:
            _check_seal_header(value, "public key")
            has_public_key = True
        elif number in (4, 5) and wire == 2 and value and not allow_evaluation_keys:
            raise ContextHasEvaluationKeys(
                "the context carries relinearization or Galois keys; scoring needs neither: "
                "serialize with save_secret_key=False, save_relin_keys=False, "
                "save_galois_keys=False"
            )
    if require_public_key and not has_public_key:
        raise InvalidContext("the context has no public key")


def _proto_bytes(number: int, payload: bytes) -> bytes:
    key = _encode_varint((number << 3) | 2)
    return key + _encode_varint(len(payload)) + payload


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_PROC_FDS = Path("/proc/self/fd")


@contextmanager
def _memory_file() -> Iterator[str]:
    """A path SEAL's file-based save/load can use without the bytes touching a disk: an
    anonymous memory file on Linux, else a private temporary file removed at once."""
    if hasattr(os, "memfd_create") and _PROC_FDS.is_dir():
        fd = os.memfd_create("xinyi-seal", os.MFD_CLOEXEC)
        try:
            yield str(_PROC_FDS / str(fd))
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="xinyi-seal-") as d:  # pragma: no cover
        yield str(Path(d) / "object")
