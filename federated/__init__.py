"""Joint models under homomorphic encryption: the HE wrapper (``he``, the only TenSEAL
import), the model registry, HE scoring and vertical federated training."""
