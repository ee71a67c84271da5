"""Training frames: what travels between the bank and the gateway, and the refusals.

A frame is MAGIC ‖ u32 header length ‖ canonical JSON header ‖ blobs. The header carries
(kind, session, seq, epoch, batch), a list of finite numbers and the blob lengths."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from federated.errors import (
    MalformedMessage as MalformedMessage,
)
from federated.errors import (
    ReplayedMessage as ReplayedMessage,
)
from federated.errors import (
    RestartLimit as RestartLimit,
)
from federated.errors import (
    TrainingFinished as TrainingFinished,
)
from federated.errors import (
    UnexpectedMessage as UnexpectedMessage,
)

MAGIC = b"XYVT\x02"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
STORED_RESPONSE_BYTES = 64 * 1024


class Kind(StrEnum):
    COLUMNS = "columns"  # B→G: batch public key, Enc_b(bank columns)
    PRODUCTS = "products"  # G→B: sum-only products, Σu_g, Σu_g²
    GATEWAY_SUMS = "gateway_sums"  # B→G: the padded sums of the gateway's columns
    BATCH_DONE = "batch_done"  # G→B: the gateway updated; the batch is complete


ANSWER: dict[Kind, Kind] = {
    Kind.COLUMNS: Kind.PRODUCTS,
    Kind.GATEWAY_SUMS: Kind.BATCH_DONE,
}


@dataclass(frozen=True)
class Message:
    """One protocol message (see the module docstring for the frame)."""

    kind: Kind
    session: str
    seq: int
    epoch: int
    batch: int
    values: tuple[float, ...] = ()
    blobs: tuple[bytes, ...] = ()

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "kind": self.kind.value,
                "session": self.session,
                "seq": self.seq,
                "epoch": self.epoch,
                "batch": self.batch,
                "values": [float(v) for v in self.values],
                "blobs": [len(b) for b in self.blobs],
            },
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        return b"".join((MAGIC, struct.pack(">I", len(header)), header, *self.blobs))

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
        """Parse an untrusted frame; anything off is ``MalformedMessage``."""
        if len(data) > max_bytes:
            raise MalformedMessage(f"the message is {len(data)} bytes; at most {max_bytes}")
        if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
            raise MalformedMessage("not a training message (bad magic or version)")
        (hlen,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
        start = len(MAGIC) + 4
        if hlen > len(data) - start:
            raise MalformedMessage("the header length runs past the end of the message")
        try:
            header = json.loads(data[start : start + hlen])
        except (ValueError, UnicodeDecodeError) as e:
            raise MalformedMessage("the header is not JSON") from e
        expected = {"kind", "session", "seq", "epoch", "batch", "values", "blobs"}
        if not isinstance(header, dict) or set(header) != expected:
            raise MalformedMessage(f"the header must have exactly the keys {sorted(expected)}")
        try:
            kind = Kind(header["kind"])
        except ValueError as e:
            raise MalformedMessage(f"unknown message kind {header['kind']!r}") from e
        for key in ("seq", "epoch", "batch"):
            v = header[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**53:
                raise MalformedMessage(f"{key} must be a non-negative integer")
        if not isinstance(header["session"], str) or not 0 < len(header["session"]) <= 64:
            raise MalformedMessage("session must be a short string")
        values = header["values"]
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise MalformedMessage("values must be a list of numbers")
        if not all(math.isfinite(v) for v in values):
            raise MalformedMessage("values must be finite")
        lengths = header["blobs"]
        if not isinstance(lengths, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in lengths
        ):
            raise MalformedMessage("blobs must be a list of positive lengths")
        body = data[start + hlen :]
        if sum(lengths) != len(body):
            raise MalformedMessage("the blob lengths do not add up to the message body")
        blobs: list[bytes] = []
        offset = 0
        for n in lengths:
            blobs.append(body[offset : offset + n])
            offset += n
        return cls(
            kind=kind,
            session=header["session"],
            seq=header["seq"],
            epoch=header["epoch"],
            batch=header["batch"],
            values=tuple(float(v) for v in values),
            blobs=tuple(blobs),
        )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_ints(values: list[int]) -> bytes:
    """Integers mod a 60-bit prime as little-endian 64-bit words (a blob)."""
    return np.asarray(values, dtype="<u8").tobytes()


def unpack_ints(blob: bytes, count: int, modulus: int) -> list[int]:
    """``count`` words, each below ``modulus``; anything else is malformed."""
    expect(len(blob) == 8 * count, f"expected {count} integers")
    words = np.frombuffer(blob, dtype="<u8")
    expect(bool(np.all(words < np.uint64(modulus))), "an integer is outside the modulus")
    return [int(w) for w in words]


def expect(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedMessage(message)
