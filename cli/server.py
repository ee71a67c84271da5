"""`xinyi init`, `xinyi serve`.

``xinyi serve`` runs the gateway on gunicorn with ``gthread`` workers (each worker a
process with ``server.threads`` request threads): HE scoring is CPU-bound and releases
the GIL only in parts, so processes give the parallelism and threads keep a worker busy
while requests wait for the database and for their audit log index (requests waiting
together share one audit batch).

Graceful shutdown: on SIGTERM gunicorn stops accepting, lets requests in flight finish
(``graceful_timeout``), and each worker stops its background loops (checkpoints,
webhooks) on the way out. Every answer that was sent had its entry integrated first, so
nothing is left to flush; queued entries of requests cut short are integrated by
whichever process sequences next. ``/readyz`` tells a load balancer when a worker can
serve (database reachable, audit log readable).
"""

from __future__ import annotations

import os
from typing import Any

import click

from common.db import migrate
from common.files import check_private_dir, make_private_dir
from common.settings import Settings, derived_public_url, load_settings


def settings_from(ctx: click.Context, **server: Any) -> Settings:
    """The settings of this invocation; ``server`` items that are not None override the
    file's ``server`` section (``host``, ``port``, ``public_url``)."""
    given = {k: v for k, v in server.items() if v is not None}
    return load_settings(
        (ctx.obj or {}).get("config_path"), overrides={"server": given} if given else None
    )


# Files the gateway creates (the SQLite database and its -wal/-shm, keys, dev secrets,
# metrics) are for the gateway's user alone, whatever the umask it was started with.
PRIVATE_UMASK = 0o077


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the instance folder: database schema and signing keys (encrypted at rest)."""
    from keys import KeyRing

    settings = settings_from(ctx)
    previous = os.umask(PRIVATE_UMASK)
    try:
        make_private_dir(settings.home)
        migrate(settings.database_url)
        ring = KeyRing(settings)
        ring.ensure_all()
    finally:
        os.umask(previous)
    click.echo(f"instance: {settings.home}")
    click.echo(f"database: {settings.database_url.split('@')[-1]}")
    for key in ring.jwks()["keys"]:
        click.echo(f"key: {key.get('xinyi_purpose')} {key['kid']}")


def gunicorn_options(bind: str, workers: int, threads: int) -> dict[str, Any]:
    """The gunicorn settings of ``xinyi serve``."""
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # A worker that does not answer its heartbeat for this long is replaced.
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        # Request line and header limits (bodies: limits.max_request_bytes in the app).
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        # No access log: one line per request costs CPU on the hot path; /metrics counts.
        "accesslog": None,
        "child_exit": _child_exit,
        "worker_exit": _worker_exit,
    }


@click.command()
@click.option("--host", default=None, help="Bind address (default from config).")
@click.option("--port", type=int, default=None, help="Port (default from config, 8600).")
@click.option(
    "--public-url",
    default=None,
    help="The URL institutions use (default: $XINYI_PUBLIC_URL, server.public_url, "
    "else http://HOST:PORT).",
)
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=None, help="Request threads per worker.")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    public_url: str | None,
    workers: int | None,
    threads: int | None,
) -> None:
    """Run the gateway on gunicorn."""
    from gunicorn.app.base import BaseApplication

    os.umask(PRIVATE_UMASK)
    settings = settings_from(ctx, host=host, port=port, public_url=public_url)
    server = settings.config.server
    if settings.home.exists():
        check_private_dir(settings.home)
    else:
        make_private_dir(settings.home)
    bind = f"{server.host}:{server.port}"
    n = workers or server.workers
    options = {**gunicorn_options(bind, n, threads or server.threads), "umask": PRIVATE_UMASK}

    class Gateway(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

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
    click.echo(f"public URL: {server.public_url}  (token endpoint {settings.token_endpoint})")
    wildcard = server.host in ("0.0.0.0", "::")  # noqa: S104 -- naming it, not binding
    if wildcard and server.public_url == derived_public_url(server.host, server.port):
        click.echo(
            "hint: bound to every interface; institutions elsewhere need --public-url "
            "(or XINYI_PUBLIC_URL) naming the address they reach this gateway at",
            err=True,
        )
    click.echo(
        f"serving on http://{bind} with {n} workers × {options['threads']} threads", err=True
    )
    Gateway().run()


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # untyped lib


def _worker_exit(_server: Any, worker: Any) -> None:
    """A worker leaving (graceful stop, restart): stop its background loops and close its
    database connections."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("xinyi") if app is not None else None
    if services is not None:
        services.stop()
        services.engine.dispose()


commands: list[click.Command] = [init, serve]
