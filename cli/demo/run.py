"""`xinyi demo`: the whole story on the embedded default, end to end, over real HTTP.

A fresh instance (SQLite, keys in files) is created under ``$XINYI_HOME/demo``; the
gateway serves on a loopback port; a bank, enterprises, departments and the operator
act through the same HTTP API and SDK that outside clients use. When run in a terminal
(and not with CI=true) it keeps serving afterwards so a person can look around.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx

from cli.demo.story import Story, say
from common.settings import Settings, load_settings


def _serve(settings: Settings, port: int) -> tuple[Any, threading.Thread]:
    from werkzeug.serving import make_server

    from gateway import create_app

    app = create_app(settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
    thread.start()
    return server, thread


def prepare_instance(base_env: dict[str, str], port: int) -> Settings:
    """A fresh demo instance: its own folder, config with the demo port, schema, keys."""
    from common.db import migrate
    from keys import KeyRing

    home = Path(base_env.get("XINYI_HOME", "instance")).resolve() / "demo"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, mode=0o700)
    env = {**base_env, "XINYI_HOME": str(home)}
    env.pop("XINYI_DATABASE_URL", None)  # the demo is the embedded default
    settings = load_settings(
        env=env,
        overrides={
            "server": {"public_url": f"http://127.0.0.1:{port}", "port": port},
            # The demo bank's webhook receiver listens on loopback (a laptop demo only).
            "consent": {"unsafe_webhook_private_addresses": True},
        },
    )
    migrate(settings.database_url)
    KeyRing(settings).ensure_all()
    return settings


@click.command()
@click.option("--port", type=int, default=8600, show_default=True)
@click.option(
    "--enterprises", type=int, default=3000, show_default=True, help="Size of the synthetic city."
)
@click.option(
    "--serve/--no-serve",
    "keep_serving",
    default=None,
    help="Keep serving after the story (default: when run in a terminal, not in CI).",
)
@click.option(
    "--nodes",
    "two_nodes",
    is_flag=True,
    help="Instead: a two-node story, a province relaying to a city (docs/network.md).",
)
def demo(port: int, enterprises: int, keep_serving: bool | None, two_nodes: bool) -> None:
    """The whole story on the embedded default, printing what happens."""
    from cli.demo.steps import STEPS, print_accounts
    from common.logging import configure

    # The story speaks for itself; the gateway's own log lines would drown it. Warnings
    # (unsafe dev secrets among them) still show.
    configure(level="WARNING")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if two_nodes:
        from cli.demo.nodes import run_nodes

        run_nodes(port, _serve)
        return

    settings = prepare_instance(dict(os.environ), port)
    say(f"instance: {settings.home}  (SQLite, keys encrypted in files)")
    server, thread = _serve(settings, port)
    base = f"http://127.0.0.1:{port}"
    story = Story(
        settings=settings,
        base=base,
        http=httpx.Client(base_url=base, timeout=60),
        home=settings.home,
        enterprises=enterprises,
    )
    steps: list[Callable[[Story], None]] = STEPS
    try:
        for run in steps:
            run(story)
        print_accounts(story)
    finally:
        if keep_serving is None:
            keep_serving = sys.stdin.isatty() and os.environ.get("CI") != "true"
        if keep_serving:
            say("\nServing until Ctrl-C.")
            try:
                while thread.is_alive():
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        server.shutdown()
