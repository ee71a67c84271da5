"""`xinyi init`, `xinyi serve`.

``xinyi serve`` runs the gateway on gunicorn with ``gthread`` workers (each worker a
process with ``server.threads`` request threads): HE scoring is CPU-bound and releases
the GIL only in parts, so processes give the parallelism and threads keep a worker busy
while requests wait for the database and for their audit log index (requests waiting
together share one audit batch).

Graceful shutdown: on SIGTERM gunicorn stops accepting, lets requests in flight finish
(``graceful_timeout``), and each worker stops its background loops (checkpoints,
webhooks) on the way out.

Reload (SIGHUP, ``systemctl reload``): the arbiter re-reads ``config.yaml`` (workers,
threads; a file that no longer validates is refused with an error in the log, and the
last valid one, kept as ``$XINYI_HOME/config.last-good.yaml``, stays in force), starts
a new set of workers and stops the old ones gracefully (each finishes its requests in
flight; the listening socket is shared, so no connection is refused). The app is never
preloaded in the arbiter, and each new worker drops every module of the project the
arbiter had imported before loading the app: a worker runs the code installed on disk
and the configuration in ``config.yaml`` at the time it started, never a mix of old and
new. Every answer that was sent had its entry integrated first, so
nothing is left to flush; queued entries of requests cut short are integrated by
whichever process sequences next. ``/readyz`` tells a load balancer when a worker can
serve (database reachable, audit log readable).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import Any

import click

from cli.instance import settings_from
from common.db import migrate
from common.errors import ConfigError
from common.files import check_private_dir, make_private_dir
from common.logging import get_logger
from common.settings import DEFAULT_CONFIG, derived_public_url, load_settings

log = get_logger("serve")
LAST_GOOD_CONFIG = "config.last-good.yaml"


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


PROJECT_PACKAGES = (
    "audit",
    "bank",
    "cli",
    "common",
    "consent",
    "federated",
    "gateway",
    "keys",
    "migrations",
    "records",
    "registry",
)


def forget_project_modules() -> None:
    """Drop the project's modules from ``sys.modules`` so the next import reads them
    from disk (a worker forked by an arbiter that started before an upgrade)."""
    for name in list(sys.modules):
        if name.split(".", 1)[0] in PROJECT_PACKAGES:
            del sys.modules[name]


class ServeLock:
    """One ``xinyi serve`` per instance folder: the arbiter holds an exclusive lock on
    ``serve.lock`` for its lifetime (a second one would wipe the first one's metrics).
    A POSIX record lock (``lockf``): it belongs to the arbiter alone, not to the workers
    it forks, so it goes with the arbiter even while orphaned workers wind down."""

    def __init__(self, home: Path) -> None:
        self.path = home / "serve.lock"

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"another `xinyi serve` (pid {holder}) runs on this instance folder "
                f"({self.path.parent}); stop it first (systemctl stop xinyi), or give this "
                "one its own XINYI_HOME",
                code="instance_busy",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        # Kept open (and locked) until the arbiter exits; forked workers share the file
        # descriptor but not the record lock.
        self.fd = fd


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
    """Run the gateway on gunicorn (SIGHUP: re-read config.yaml and replace the workers
    with ones running the installed code)."""
    from gunicorn.app.base import BaseApplication

    from cli.instance import require_instance

    os.umask(PRIVATE_UMASK)
    settings = settings_from(ctx, host=host, port=port, public_url=public_url)
    require_instance(settings)  # never serve from a key folder made up on the spot
    check_private_dir(settings.home)
    given = {"host": host, "port": port, "public_url": public_url}
    overrides = {"server": {k: v for k, v in given.items() if v is not None}}
    config_path = (ctx.obj or {}).get("config_path")
    source = Path(config_path or os.environ.get("XINYI_CONFIG") or DEFAULT_CONFIG)
    # The configuration the arbiter last found valid: a reload with a broken
    # config.yaml keeps serving with it (and says so) instead of failing every worker.
    last_good = settings.home / LAST_GOOD_CONFIG

    def current_options() -> dict[str, Any]:
        # Read again at each reload: a changed workers/threads/port applies on SIGHUP.
        try:
            loaded = load_settings(source, overrides=overrides)
        except ConfigError as e:
            if not last_good.exists():
                raise
            log.error("config_reload_refused", error=e.message, kept=str(last_good))
            loaded = load_settings(last_good, overrides=overrides)
        else:
            _write_private(last_good, source.read_bytes())
        server = loaded.config.server
        n = workers or server.workers
        os.environ["XINYI_WORKERS"] = str(n)
        bind = f"{server.host}:{server.port}"
        return {**gunicorn_options(bind, n, threads or server.threads), "umask": PRIVATE_UMASK}

    class Gateway(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in current_options().items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # In the worker, after the fork: fresh code and a fresh read of config.yaml.
            forget_project_modules()
            from common.errors import ConfigError as FreshConfigError
            from common.settings import load_settings as fresh_settings
            from gateway import create_app

            try:
                fresh = fresh_settings(source, overrides=overrides)
            except FreshConfigError:
                fresh = fresh_settings(last_good, overrides=overrides)  # the arbiter logged why
            return create_app(fresh)

    lock = ServeLock(settings.home)
    lock.acquire()
    # Per-process metrics are summed across workers through files in this folder; the
    # files of a previous run (same instance, now stopped: we hold the lock) go.
    metrics_dir = settings.home / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    options = current_options()
    server = settings.config.server
    click.echo(f"public URL: {server.public_url}  (token endpoint {settings.token_endpoint})")
    wildcard = server.host in ("0.0.0.0", "::")  # noqa: S104 -- naming it, not binding
    if wildcard and server.public_url == derived_public_url(server.host, server.port):
        click.echo(
            "hint: bound to every interface; institutions elsewhere need --public-url "
            "(or XINYI_PUBLIC_URL) naming the address they reach this gateway at",
            err=True,
        )
    click.echo(
        f"serving on http://{options['bind']} with {options['workers']} workers × "
        f"{options['threads']} threads",
        err=True,
    )
    Gateway().run()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


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
