"""Every error of the federated package, in one place (as ``audit.errors`` and
``consent.errors``): each has a stable ``code``, and ``gateway/errors.py`` alone maps
them to HTTP statuses. The modules that raise them re-export them by name."""

from __future__ import annotations

from common.errors import Conflict, Error, Forbidden, InvalidInput, NotFound, TooLarge, Unavailable


# Contexts and ciphertexts (untrusted bytes)
class InvalidContext(InvalidInput):
    code = "invalid_context"


class ContextHasSecretKey(InvalidInput):
    code = "context_has_secret_key"


class ContextHasEvaluationKeys(InvalidInput):
    code = "context_has_evaluation_keys"


class WrongParameters(InvalidInput):
    code = "context_parameters"


class InvalidCiphertext(InvalidInput):
    code = "invalid_ciphertext"


class PayloadTooLarge(TooLarge):
    code = "too_large"


# Joint models
class InvalidModel(InvalidInput):
    code = "invalid_model"


# The model and context registry
class ContextNotFound(NotFound):
    code = "context_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ModelNotOwned(Forbidden):
    """A version of another owner's model id (issue 12, attack 3)."""

    code = "model_not_owner"


class ModelNotApproved(Forbidden):
    """A model version the operator has not approved (pending or rejected)."""

    code = "model_not_approved"


class ModelAlreadyReviewed(Conflict):
    code = "model_already_reviewed"


# Training plans
class InvalidPlan(InvalidInput):
    code = "training_plan"


# Training messages
class MalformedMessage(InvalidInput):
    code = "training_message_malformed"


class ReplayedMessage(Conflict):
    code = "training_message_replayed"


class UnexpectedMessage(Conflict):
    code = "training_message_unexpected"


class RestartLimit(Conflict):
    code = "training_restart_limit"


class TrainingFinished(Conflict):
    code = "training_finished"


# Stored training sessions
class TrainingSessionNotFound(NotFound):
    code = "training_session_not_found"


class ConcurrentMessage(Conflict):
    code = "training_concurrent_message"


class SealBroken(Error):
    code = "training_secret_unreadable"


# The bank's side of the transport
class PeerRefused(Conflict):
    """The gateway refused a frame; ``code`` is the gateway's code."""

    code = "training_peer_refused"


class ConnectionLost(Unavailable):
    code = "training_connection_lost"
