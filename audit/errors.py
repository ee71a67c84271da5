"""The audit package's errors (kinds from ``common.errors``, stable codes)."""

from __future__ import annotations

from common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable


class AuditUnavailable(Unavailable):
    """The log cannot record or integrate an entry now; nothing may be served."""

    code = "audit_unavailable"


class EntryInvalid(InvalidInput):
    """An audit entry does not have the audit entry shape (never a raw value)."""

    code = "audit_entry_invalid"


class NoteInvalid(InvalidInput):
    """Text that should be a C2SP signed note, vkey, checkpoint or key is malformed."""

    code = "note_invalid"


class SignatureInvalid(InvalidInput):
    """A signature or cosignature does not verify."""

    code = "signature_invalid"


class WitnessUnknown(Forbidden):
    """A cosignature from a key that is not registered for any department."""

    code = "witness_unknown"


class EntryNotFound(NotFound):
    code = "audit_entry_not_found"


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"


class LogInconsistent(Conflict):
    """The log contradicts what was seen or signed before: a fork, a rollback, a
    rewritten or missing entry."""

    code = "audit_log_inconsistent"
