"""Casework errors; the codes are part of the external contract."""

from __future__ import annotations

from common.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge


class InvalidObjection(InvalidInput):
    """A filing or a decision that is malformed (nothing was stored)."""

    code = "invalid_objection"


class ObjectionAlreadyOpen(Conflict):
    """The enterprise already has an open objection about this feature."""

    code = "objection_already_open"


class ObjectionNotOpen(Conflict):
    """The objection was already decided."""

    code = "objection_not_open"


class ObjectionNotFound(NotFound):
    code = "objection_not_found"


class NotOwningDepartment(Forbidden):
    """Only the department that owns the feature decides an objection about it."""

    code = "not_owning_department"


class RepairAlreadyOpen(Conflict):
    """The enterprise already has an open repair application for this record."""

    code = "repair_already_open"


class RepairNotOpen(Conflict):
    code = "repair_not_open"


class RepairNotFound(NotFound):
    code = "repair_not_found"


class NotRepairable(InvalidInput):
    """The record named is not one the configuration lists as repairable."""

    code = "not_repairable"


class AttachmentRefused(InvalidInput):
    """An objection's attachment of a type not allowed (by its bytes), or empty."""

    code = "attachment_refused"


class AttachmentTooLarge(TooLarge):
    """An objection's attachment over ``casework.max_attachment_bytes``."""

    code = "attachment_too_large"


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"
