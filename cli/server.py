"""`xinyi init`, `xinyi serve`, `xinyi demo`."""

from __future__ import annotations

import os
from typing import Any

import click

from common.db import migrate
from common.settings import Settings, load_settings


def settings_from(ctx: click.Context) -> Settings:
    return load_settings((ctx.obj or {}).get("config_path"))


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the instance folder: database schema and signing keys (encrypted at rest)."""
    from keys import KeyRing

    settings = settings_from(ctx)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    migrate(settings.database_url)
    ring = KeyRing(settings)
    ring.ensure_all()
    click.echo(f"instance: {settings.home}")
    click.echo(f"database: {settings.database_url.split('@')[-1]}")
    for key in ring.jwks()["keys"]:
        click.echo(f"key: {key.get('xinyi_purpose')} {key['kid']}")


@click.command()
@click.option("--host", default=None, help="Bind address (default from config).")
@click.option("--port", type=int, default=None, help="Port (default from config, 8600).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the gateway on gunicorn."""
    from gunicorn.app.base import BaseApplication

    settings = settings_from(ctx)
    server = settings.config.server
    bind = f"{host or server.host}:{port or server.port}"
    n = workers or server.workers

    class Gateway(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", n)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", _child_exit)

        def load(self) -> Any:
            from gateway import create_app

            return create_app(settings)

    # Per-process metrics are summed across workers through files in this folder.
    metrics_dir = settings.home / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    os.environ["XINYI_WORKERS"] = str(n)
    click.echo(f"serving on http://{bind} with {n} workers", err=True)
    Gateway().run()


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # untyped lib


commands: list[click.Command] = [init, serve]
