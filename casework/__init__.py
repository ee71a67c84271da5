"""Casework (DESIGN "Platform services"): objections (异议, JS 14, AH 10) and, later,
credit repair, as workflows owned by the department of the feature or record.

The core (``objections``) is plain functions and dataclasses; ``store`` is the
persistence. The gateway composes them with the records store (a correction is a new
snapshot of the feature) and the webhook outbox (``data.corrected``).
"""
