"""A real gateway in subprocesses (gunicorn workers) for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.settings import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parent.parent
XINYI = [sys.executable, "-m", "cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path, database_url: str) -> dict[str, str]:
    config = home / "config.yaml"
    if not config.exists():
        home.mkdir(parents=True, exist_ok=True)
        # No public_url: `xinyi serve --port` derives it from the port it serves on.
        text = DEFAULT_CONFIG.read_text(encoding="utf-8")
        text = text.replace("checkpoint_interval_seconds: 3", "checkpoint_interval_seconds: 0.5")
        config.write_text(text, encoding="utf-8")
    return {
        **os.environ,
        "XINYI_HOME": str(home),
        "XINYI_CONFIG": str(config),
        "XINYI_DATABASE_URL": database_url,
        "XINYI_KEY_PASSPHRASE": "live-test-passphrase",
        "XINYI_SECRET_KEY": "live-secret",
        "PYTHONPATH": str(ROOT),
    }


def xinyi(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [*XINYI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    if out.returncode != 0:
        raise AssertionError(f"xinyi {' '.join(args)} failed: {out.stderr[-2000:]}")
    return out.stdout


@contextmanager
def serving(
    home: Path, database_url: str, *, workers: int = 2, port: int | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """``xinyi init`` then ``xinyi serve --port`` on ``port`` (a free one by default; the
    public URL derives from it); yields (base URL, env)."""
    from bench.load import Server  # bench.load imports this module

    port = port or free_port()
    env = env_for(home, database_url)
    xinyi(env, "init")
    server = Server(env, port, workers)
    server.start()
    try:
        yield server.base, env
    finally:
        server.stop()
