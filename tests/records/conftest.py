"""Fixtures for department data: the catalog of the bundled config, CSV builders and
real enterprise codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from common import uscc
from common.settings import load_settings
from records.catalog import Catalog

# Valid codes (GB 32100 check digits computed by common.uscc).
A = uscc.complete("91330100MA27XK3B1")
B = uscc.complete("91330106MA2H0YQ57")
C = uscc.complete("91440300MA5FQ1C91")
D = uscc.complete("91110108MA01C3Q62")


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog(load_settings(env={}).config)


def csv_bytes(header: Sequence[str], *rows: Sequence[object]) -> bytes:
    """A CSV file as a department would send it (cells joined as given, no quoting)."""
    lines = [",".join(header)] + [",".join(str(c) for c in r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def make_csv() -> Callable[..., bytes]:
    return csv_bytes
