"""CKKS parameters and the errors of the HE package (every TenSEAL/SEAL failure becomes
one of these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import InvalidInput
from federated.errors import (
    ContextHasEvaluationKeys as ContextHasEvaluationKeys,
)
from federated.errors import (
    ContextHasSecretKey as ContextHasSecretKey,
)
from federated.errors import (
    InvalidCiphertext as InvalidCiphertext,
)
from federated.errors import (
    InvalidContext as InvalidContext,
)
from federated.errors import (
    PayloadTooLarge as PayloadTooLarge,
)
from federated.errors import (
    WrongParameters as WrongParameters,
)


@dataclass(frozen=True)
class CKKSParams:
    """CKKS parameters: ring degree N (slots = N/2), modulus chain bit sizes, scale."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 60)
    global_scale_bits: int = 40

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def scale(self) -> float:
        return float(2.0**self.global_scale_bits)

    def as_dict(self) -> dict[str, Any]:
        """The contract's ``context_params`` object."""
        return {
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "global_scale_bits": self.global_scale_bits,
        }

    @classmethod
    def from_dict(cls, d: Any) -> CKKSParams:
        try:
            return cls(
                int(d["poly_modulus_degree"]),
                tuple(int(b) for b in d["coeff_mod_bit_sizes"]),
                int(d["global_scale_bits"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"malformed CKKS parameters: {e}", code="context_parameters") from e


DEFAULT_PARAMS = CKKSParams()
