"""Consent registry: enterprises authorize institutions through signed, revocable grants.

The pure core (``policy``, ``letter``) decides; ``store`` persists; ``service`` composes
them with the signing keys. Every data request is checked by one function,
``ConsentService.check``, which answers with a use of the grant or a refusal code.
"""
