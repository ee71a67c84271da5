"""The only package that imports TenSEAL (and its SEAL bindings): CKKS for scoring and
training, split by job — ``params`` (parameters, errors), ``wire`` (untrusted bytes
checked before TenSEAL or SEAL sees them), ``context`` (contexts and vectors),
``evaluate`` (the gateway's keyless scoring arithmetic) and ``sumonly`` (the training
products: per-batch bank keys, no decryption at the gateway)."""

from federated.he.context import (
    Ciphertext,
    PublicContext,
    SecretContext,
    encrypt_seeded,
)
from federated.he.evaluate import EvalCiphertext, Evaluated, Evaluator
from federated.he.params import (
    DEFAULT_PARAMS,
    CKKSParams,
    ContextHasEvaluationKeys,
    ContextHasSecretKey,
    InvalidCiphertext,
    InvalidContext,
    PayloadTooLarge,
    WrongParameters,
)
from federated.he.sumonly import (
    SEED_BYTES,
    BatchKey,
    BatchPublicKey,
    SumOnly,
    SumOnlyContext,
)
from federated.he.wire import _encode_varint, _fields, _proto_bytes

__all__ = [
    "DEFAULT_PARAMS",
    "SEED_BYTES",
    "BatchKey",
    "BatchPublicKey",
    "CKKSParams",
    "Ciphertext",
    "ContextHasEvaluationKeys",
    "ContextHasSecretKey",
    "EvalCiphertext",
    "Evaluated",
    "Evaluator",
    "InvalidCiphertext",
    "InvalidContext",
    "PayloadTooLarge",
    "PublicContext",
    "SecretContext",
    "SumOnly",
    "SumOnlyContext",
    "WrongParameters",
    "_encode_varint",
    "_fields",
    "_proto_bytes",
    "encrypt_seeded",
]
