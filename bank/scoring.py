"""Scoring from the bank's side: encrypt the bank's features, ask the gateway, decrypt.

The bank's features are standardized and clipped as the model documents
(``bank_standardization`` in ``GET /v1/models``), encrypted under the bank's own CKKS
key (seeded symmetric encryption: half the bytes of a public-key ciphertext), sent with
the enterprise's grant, and the answer decrypted with the same key: the logit is the sum
of the k decrypted slots (single) or slot i (batch); the probability is its sigmoid.

Models are pinned: ``Scorer.model`` resolves a reference once to ``id@version`` and
every score names that exact version, so a version published later never answers in
its place; the model's owner (``owner/name``; a bare id is the operator's) must be one
the bank trusts (itself and the operator unless told otherwise), and the gateway's
description must be of the id and version asked for (``model_owner_untrusted``,
``bad_response``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bank.client import GatewayClient
from bank.errors import BankError
from federated import he
from federated.models import OPERATOR, Standardization, bank_column, model_owner


def sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    e = math.exp(logit)
    return e / (1.0 + e)


@dataclass(frozen=True)
class ModelInfo:
    """What the bank knows of a model: ``GET /v1/models`` (no weights)."""

    id: str
    version: int
    bank_features: tuple[str, ...]
    gateway_features: tuple[str, ...]
    gateway_categories: tuple[str, ...]
    params: he.CKKSParams
    bank_standardization: Standardization | None
    grant_categories: tuple[str, ...] = ()
    owner: str = OPERATOR

    @property
    def consent_categories(self) -> tuple[str, ...]:
        """What a consent must name to allow scoring with this model (its non-public
        categories; all of them when the gateway does not say)."""
        return self.grant_categories or self.gateway_categories

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def bank_columns(self) -> tuple[str, ...]:
        """The raw columns the bank supplies (``log1p(avg_balance)`` reads
        ``avg_balance``)."""
        return tuple(bank_column(f) for f in self.bank_features)

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> ModelInfo:
        try:
            std = view.get("bank_standardization")
            return cls(
                id=str(view["id"]),
                version=int(view["version"]),
                bank_features=tuple(view["bank_features"]),
                gateway_features=tuple(view["gateway_features"]),
                gateway_categories=tuple(view["gateway_categories"]),
                grant_categories=tuple(view.get("grant_categories") or ()),
                owner=str(view.get("owner") or model_owner(str(view["id"]))),
                params=he.CKKSParams.from_dict(view["context_params"]),
                bank_standardization=(
                    Standardization(tuple(std["mean"]), tuple(std["std"]), tuple(std["clip"]))
                    if std
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BankError(
                "bad_response", f"the gateway's model description is malformed: {e}"
            ) from e

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        """Raw bank columns (rows = applicants, columns = ``bank_columns``) as the model
        wants them encrypted: ``log1p`` where a feature says so, then standardized and
        clipped when the model documents it."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.bank_features):
            raise BankError(
                "invalid_features",
                f"expected {len(self.bank_features)} bank columns {list(self.bank_columns)}",
            )
        if not np.all(np.isfinite(x)):
            raise BankError("invalid_features", "bank feature values must be finite numbers")
        logs = [j for j, f in enumerate(self.bank_features) if f.startswith("log1p(")]
        if logs:
            x = x.copy()
            x[:, logs] = np.log1p(np.maximum(x[:, logs], 0.0))
        return x if self.bank_standardization is None else self.bank_standardization.apply(x)

    def row(self, features: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        """One applicant's raw bank columns, by column name or in model order."""
        if isinstance(features, Mapping):
            missing = [c for c in self.bank_columns if c not in features]
            if missing:
                raise BankError("invalid_features", f"missing bank columns {missing}")
            values = [float(features[c]) for c in self.bank_columns]
        else:
            values = [float(v) for v in features]
        return np.asarray([values], dtype=np.float64)


@dataclass(frozen=True)
class Score:
    """A decrypted score; ``index`` is the applicant's position in a batch."""

    index: int
    logit: float
    probability: float
    audit_index: int | None
    model: str


@dataclass(frozen=True)
class Refusal:
    """An applicant the gateway refused (or the bank could not ask for)."""

    index: int
    error: str
    message: str
    audit_index: int | None


class Scorer:
    """Scores applicants with one registered context of this bank."""

    def __init__(
        self,
        client: GatewayClient,
        secret: he.SecretContext,
        context_id: str,
        *,
        compact: bool = True,
        trusted_owners: Sequence[str] | None = None,
    ) -> None:
        self.client = client
        self.secret = secret
        self.context_id = context_id
        self.compact = compact
        self.trusted_owners = frozenset(
            trusted_owners if trusted_owners is not None else (client.institution_id, OPERATOR)
        )

    def model(self, ref: str) -> ModelInfo:
        """The model ``ref`` (``id`` or ``id@version``) pinned to one version: scores
        name ``info.ref``. Refused unless its owner is trusted and the gateway described
        exactly the id (and version) asked for."""
        model_id, _, version = ref.partition("@")
        owner = model_owner(model_id)
        if owner not in self.trusted_owners:
            raise BankError(
                "model_owner_untrusted",
                f"model {model_id} belongs to {owner}; trusted owners: "
                f"{', '.join(sorted(self.trusted_owners))}",
            )
        info = ModelInfo.from_view(self.client.model(ref))
        if info.id != model_id or info.owner != owner or (version and str(info.version) != version):
            raise BankError(
                "bad_response",
                f"asked for model {ref}; the gateway described {info.ref} of {info.owner}",
            )
        if info.params != self.secret.params:
            raise BankError(
                "context_parameters",
                f"model {info.ref} needs CKKS parameters {info.params.as_dict()}; this bank's "
                f"context has {self.secret.params.as_dict()}",
            )
        return info

    def _encrypt(self, values: np.ndarray) -> bytes:
        if self.compact:
            return he.encrypt_seeded(self.secret, values)
        return self.secret.encrypt(values).to_bytes()

    def score(
        self, model: ModelInfo, grant: str, features: Mapping[str, float] | Sequence[float]
    ) -> Score:
        """One applicant; raises BankError on a refusal."""
        z = model.inputs(model.row(features))[0]
        answer, audit_index = self.client.score(grant, model.ref, self.context_id, self._encrypt(z))
        slots = self.secret.decrypt(self.secret.ciphertext(answer))
        logit = float(np.sum(slots[: len(model.bank_features)]))
        return Score(0, logit, sigmoid(logit), audit_index, model.ref)

    def score_batch(
        self, model: ModelInfo, grants: Sequence[str], rows: np.ndarray
    ) -> list[Score | Refusal]:
        """Many applicants in one request (column-packed); refused ones come back as
        ``Refusal`` in their place."""
        z = model.inputs(rows)
        n = len(grants)
        if z.shape[0] != n:
            raise BankError("invalid_features", f"{z.shape[0]} feature rows for {n} grants")
        slots = self.secret.params.slots
        chunks = [slice(c, min(n, c + slots)) for c in range(0, n, slots)]
        cts = [self._encrypt(z[part, j]) for part in chunks for j in range(z.shape[1])]
        answer = self.client.score_batch(grants, model.ref, self.context_id, cts)
        if len(answer["ciphertexts"]) != len(chunks):
            raise BankError("bad_response", "the gateway answered with the wrong number of chunks")
        logits = np.concatenate(
            [
                self.secret.decrypt(self.secret.ciphertext(blob))[: part.stop - part.start]
                for blob, part in zip(answer["ciphertexts"], chunks, strict=True)
            ]
        )
        refused = {int(r["index"]): r for r in answer.get("refused", [])}
        indexes = answer.get("audit_indexes", [None] * n)
        out: list[Score | Refusal] = []
        for i in range(n):
            if i in refused:
                r = refused[i]
                out.append(
                    Refusal(i, str(r["error"]), str(r.get("message", "")), r.get("audit_index"))
                )
            else:
                logit = float(logits[i])
                out.append(
                    Score(i, logit, sigmoid(logit), indexes[i], answer.get("model", model.ref))
                )
        return out


# Applicants and grants ----------------------------------------------------------------------


@dataclass(frozen=True)
class Applicants:
    """Rows of an applicants CSV: who (``uscc`` and/or ``grant``) and the bank features."""

    usccs: tuple[str | None, ...]
    grants: tuple[str | None, ...]
    features: np.ndarray


def read_applicants(path: Path, model: ModelInfo) -> Applicants:
    """A CSV with a ``uscc`` or ``grant`` column (or both) and the model's bank columns;
    every bad row is reported with its line number."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or [])
            missing = [c for c in model.bank_columns if c not in columns]
            if missing:
                raise BankError("invalid_csv", f"{path}: missing columns {missing}")
            if not {"uscc", "grant"} & columns:
                raise BankError("invalid_csv", f"{path}: needs a 'uscc' or a 'grant' column")
            usccs: list[str | None] = []
            grants: list[str | None] = []
            rows: list[list[float]] = []
            problems: list[str] = []
            for line, rec in enumerate(reader, start=2):
                try:
                    rows.append([float(rec[c]) for c in model.bank_columns])
                except (TypeError, ValueError):
                    problems.append(f"line {line}: a bank feature is not a number")
                    continue
                usccs.append((rec.get("uscc") or "").strip() or None)
                grants.append((rec.get("grant") or "").strip() or None)
    except OSError as e:
        raise BankError("invalid_csv", f"{path}: {e}") from e
    if problems:
        raise BankError("invalid_csv", f"{path}: " + "; ".join(problems[:20]))
    if not rows:
        raise BankError("invalid_csv", f"{path}: no applicants")
    return Applicants(tuple(usccs), tuple(grants), np.asarray(rows, dtype=np.float64))


def grants_by_enterprise(client: GatewayClient, model: ModelInfo) -> dict[str, str]:
    """For each enterprise, the grant of our newest active consent that allows scoring
    with ``model`` (op ``score`` and all of its ``consent_categories``)."""
    best: dict[str, tuple[int, str]] = {}
    for c in client.consents(status="active"):
        grant = c.get("grant")
        if (
            not isinstance(grant, str)
            or "score" not in c.get("ops", [])
            or not set(model.consent_categories) <= set(c.get("categories", []))
        ):
            continue
        expires = int(c.get("expires_at") or 0)
        enterprise = str(c.get("enterprise"))
        if enterprise not in best or expires > best[enterprise][0]:
            best[enterprise] = (expires, grant)
    return {e: g for e, (_, g) in best.items()}
