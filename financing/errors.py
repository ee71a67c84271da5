"""Financing errors; the codes are part of the external contract."""

from __future__ import annotations

from common.errors import Conflict, Forbidden, InvalidInput, NotFound


class InvalidProduct(InvalidInput):
    """A product whose fields are out of range or inconsistent (nothing stored)."""

    code = "invalid_product"


class InvalidApplication(InvalidInput):
    """An application (or an answered need) outside the product's ranges (nothing
    stored)."""

    code = "invalid_application"


class InvalidOutcome(InvalidInput):
    """An outcome whose fields do not fit its decision (nothing stored)."""

    code = "invalid_outcome"


class InvalidNeed(InvalidInput):
    code = "invalid_need"


class ProductNotFound(NotFound):
    code = "product_not_found"


class ProductWithdrawn(Conflict):
    """The product was withdrawn: no new application takes it."""

    code = "product_withdrawn"


class ApplicationNotFound(NotFound):
    code = "application_not_found"


class NeedNotFound(NotFound):
    code = "need_not_found"


class NeedClosed(Conflict):
    code = "need_closed"


class RealNameRequired(Forbidden):
    """Accounts without real name browse but do not authorize (JY 二(一); AH 11)."""

    code = "real_name_required"


class NotProductInstitution(Forbidden):
    """Only the institution of the product decides or reports on an application."""

    code = "not_product_institution"


class ApplicationNotSubmitted(Conflict):
    """The application's consent was never approved: there is nothing to decide."""

    code = "application_not_submitted"


class ApplicationDecided(Conflict):
    """The application was decided (or withdrawn) already."""

    code = "application_decided"


class ApplicationNotApproved(Conflict):
    """Repayment status exists only for an approved loan."""

    code = "application_not_approved"
