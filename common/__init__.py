"""Shared kernel: settings, the root of the exception tree, logging, database plumbing,
and the enterprise identifier (USCC). Depends on nothing else in the project."""
