"""The institution-side SDK: what a bank runs on its own machines to use the gateway.

It generates and keeps the bank's keys (the Ed25519 key of ``private_key_jwt`` and the
CKKS secret context, both encrypted at rest), talks to the gateway over HTTP only
(never importing the gateway, consent, records, audit, keys or registry packages),
encrypts the bank's features, and decrypts and reads its scores. Errors are
``bank.errors.BankError`` with the gateway's code and message.
"""
