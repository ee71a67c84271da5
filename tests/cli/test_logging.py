"""Logs are JSON lines for machines and readable lines for a person at a terminal:
``make demo`` in a terminal shows no JSON between the story's lines, CI gets JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from common.logging import configure, get_logger


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def emit(stream: io.StringIO, env: dict[str, str]) -> str:
    configure(level="INFO", stream=stream, env=env)
    get_logger("test").warning("unsafe_dev_session_secret", hint="set XINYI_SECRET_KEY")
    return stream.getvalue()


def test_a_terminal_gets_lines_for_people() -> None:
    text = emit(Terminal(), {"NO_COLOR": "1"})
    line = text.strip()
    assert "unsafe_dev_session_secret" in line and "hint='set XINYI_SECRET_KEY'" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.parametrize(
    ("stream", "env"),
    [
        (io.StringIO(), {}),  # a pipe or a file
        (Terminal(), {"CI": "true"}),  # CI, even on a pseudo-terminal
        (Terminal(), {"XINYI_LOG_FORMAT": "json"}),
    ],
)
def test_machines_get_json_lines(stream: io.StringIO, env: dict[str, str]) -> None:
    record = json.loads(emit(stream, env).strip())
    assert record["event"] == "unsafe_dev_session_secret" and record["level"] == "warning"


def test_console_rendering_can_be_asked_for() -> None:
    text = emit(io.StringIO(), {"XINYI_LOG_FORMAT": "console"})
    assert "unsafe_dev_session_secret" in text and not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colours into a file
