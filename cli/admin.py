"""`xinyi admin` and `xinyi keys`: operator commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.instance import instance_settings, require_instance, settings_from
from common.db import make_engine
from common.errors import InvalidInput

if TYPE_CHECKING:
    from registry import Registry

# keys.ring.PURPOSES, spelled out: importing the key ring costs every `xinyi` command
# its start-up time (tests/cli/test_admin.py checks the two agree).
KEY_PURPOSES = ("grants", "tokens", "checkpoints", "events", "nodes")


def _registry(ctx: click.Context) -> Registry:
    from common.webhook_address import policy_for
    from registry import Registry  # imported here: hashing set-up costs `xinyi keys` time

    settings = instance_settings(ctx)
    return Registry(make_engine(settings.database_url), webhooks=policy_for(settings))


MIN_PASSPHRASE = 12


@click.group(name="admin")
def admin() -> None:
    """Onboard and suspend institutions, departments and users; disable users."""


@admin.command("add-institution")
@click.argument("institution_id")
@click.option("--name", required=True, help="Display name, e.g. 杭州银行.")
@click.option(
    "--jwk",
    "jwk_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The institution's public JWK (Ed25519 or P-256) for private_key_jwt.",
)
@click.option("--webhook", default=None, help="URL that receives signed consent events.")
@click.pass_context
def add_institution(
    ctx: click.Context, institution_id: str, name: str, jwk_path: Path, webhook: str | None
) -> None:
    """Register an institution and the public key it signs client assertions with."""
    try:
        jwk = json.loads(jwk_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{jwk_path}: not a JSON JWK: {e}", code="invalid_jwk") from e
    inst = _registry(ctx).add_institution(institution_id, name=name, jwk=jwk, webhook_url=webhook)
    click.echo(f"institution {inst.id} ({inst.name}) registered, status {inst.status}")


@admin.command("suspend-institution")
@click.argument("institution_id")
@click.pass_context
def suspend_institution(ctx: click.Context, institution_id: str) -> None:
    """Refuse the institution everything from its next request on (有进有出)."""
    inst = _registry(ctx).suspend_institution(institution_id)
    click.echo(f"institution {inst.id} is {inst.status}")


@admin.command("resume-institution")
@click.argument("institution_id")
@click.pass_context
def resume_institution(ctx: click.Context, institution_id: str) -> None:
    """Let a suspended institution back in."""
    inst = _registry(ctx).resume_institution(institution_id)
    click.echo(f"institution {inst.id} is {inst.status}")


@admin.command("add-department")
@click.argument("department_id")
@click.option("--name", required=True, help="Display name, e.g. 税务局.")
@click.pass_context
def add_department(ctx: click.Context, department_id: str, name: str) -> None:
    """Register a data-providing department (one of the catalog's, config.yaml)."""
    catalog = [d.id for d in instance_settings(ctx).config.departments]
    if department_id not in catalog:
        raise InvalidInput(
            f"{department_id!r} is not a department of the catalog; config.yaml's "
            f"departments are {', '.join(catalog)}",
            code="unknown_department",
        )
    dept = _registry(ctx).add_department(department_id, name=name)
    click.echo(f"department {dept.id} ({dept.name}) registered")


@admin.command("add-user")
@click.option(
    "--role",
    type=click.Choice(["enterprise", "department", "operator", "institution"]),
    required=True,
)
@click.option("--login", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@click.option("--uscc", default=None, help="The enterprise's USCC (role enterprise).")
@click.option("--department", default=None, help="The department id (role department).")
@click.option(
    "--institution",
    default=None,
    help="The institution id (role institution: staff of the bank's console at /bank/).",
)
@click.pass_context
def add_user(
    ctx: click.Context,
    role: str,
    login: str,
    password_stdin: bool,
    uscc: str | None,
    department: str | None,
    institution: str | None,
) -> None:
    """A person who signs in to the web pages and the session API. An enterprise account
    made here counts as real-named: the operator checked the person offline."""
    password = sys.stdin.readline().rstrip("\r\n")
    user = _registry(ctx).add_user(
        login=login,
        password=password,
        role=role,
        uscc=uscc,
        department_id=department,
        institution_id=institution,
    )
    click.echo(f"user {user.login} ({user.role}) added")


@admin.command("verify-real-name")
@click.argument("login")
@click.pass_context
def verify_real_name(ctx: click.Context, login: str) -> None:
    """Record an enterprise account's real name as verified offline (the operator saw
    the legal representative's documents): it may authorize from its next request."""
    user = _registry(ctx).verify_real_name_offline(login)
    click.echo(f"user {user.login} ({user.uscc}) is real-named")


@admin.command("disable-user")
@click.argument("login")
@click.pass_context
def disable_user(ctx: click.Context, login: str) -> None:
    """Refuse a person at once: no sign-in, and every open session ends (on every
    worker, from its next request)."""
    user = _registry(ctx).disable_user(login)
    click.echo(f"user {user.login} ({user.role}) is disabled; open sessions ended")


@admin.command("enable-user")
@click.argument("login")
@click.pass_context
def enable_user(ctx: click.Context, login: str) -> None:
    """Let a disabled person sign in again."""
    user = _registry(ctx).enable_user(login)
    click.echo(f"user {user.login} ({user.role}) is enabled")


@click.group(name="keys")
def keys() -> None:
    """Signing keys: status and rotation."""


@keys.command("rotate")
@click.argument("purpose", type=click.Choice(KEY_PURPOSES))
@click.pass_context
def rotate(ctx: click.Context, purpose: str) -> None:
    """A new signing key; the old one stays published until what it signed expired.
    The checkpoint key is rotated with `xinyi audit rotate-log-key` (witnesses follow
    only a key change the old key signed)."""
    from keys import KeyRing

    if purpose == "checkpoints":
        raise InvalidInput(
            "the checkpoint key is the log's identity for the witnesses: rotate it with "
            "`xinyi audit rotate-log-key`, which signs the key transition they follow",
            code="use_rotate_log_key",
        )

    record = KeyRing(instance_settings(ctx)).rotate(purpose)
    click.echo(f"{purpose}: new key {record.kid}")


@keys.command("change-passphrase")
@click.pass_context
def change_passphrase(ctx: click.Context) -> None:
    """Re-encrypt every key file (scrypt) under a new passphrase read from stdin. The
    old one is XINYI_KEY_PASSPHRASE, or the first stdin line when that is unset."""
    from pydantic import SecretStr

    from cli.instance import InstanceMissing
    from keys import KeyRing
    from keys.ring import DEV_PASSPHRASE_FILE

    settings = settings_from(ctx)
    dev_file = settings.home / DEV_PASSPHRASE_FILE
    if not (settings.home / "keys").is_dir():
        require_instance(settings)  # names XINYI_HOME and `xinyi init`
    lines = iter(sys.stdin.read().splitlines())
    if settings.key_passphrase is not None:
        old = settings.key_passphrase.get_secret_value()
    elif dev_file.exists():
        old = dev_file.read_text(encoding="utf-8").strip()
    else:
        old = next(lines, "")
    new = next(lines, "")
    if not old:
        raise InstanceMissing(
            "the old passphrase is neither in XINYI_KEY_PASSPHRASE nor on stdin",
            code="passphrase_missing",
        )
    if len(new) < MIN_PASSPHRASE or new == old:
        raise InvalidInput(
            f"the new passphrase (next stdin line) must be at least {MIN_PASSPHRASE} "
            "characters and differ from the old one",
            code="passphrase_weak",
        )
    ring = KeyRing(settings.model_copy(update={"key_passphrase": SecretStr(old)}))
    count = ring.change_passphrase(new.encode("utf-8"))
    dev_file.unlink(missing_ok=True)
    click.echo(f"re-encrypted {count} key files (scrypt) under the new passphrase")
    click.echo(
        "now: set XINYI_KEY_PASSPHRASE to it wherever the gateway runs (its EnvironmentFile), "
        "copy keys/ to the other hosts, and restart each host"
    )


@keys.command("list")
@click.pass_context
def list_keys(ctx: click.Context) -> None:
    """Every key with its purpose, creation and retirement time."""
    from keys import KeyRing

    ring = KeyRing(instance_settings(ctx))
    published = {k["kid"] for k in ring.jwks()["keys"]}
    for r in sorted(ring.records(), key=lambda r: (r.purpose, r.created_at)):
        state = "active" if r.retired_at is None else f"retired at {r.retired_at}"
        shown = "published" if r.kid in published else "unpublished"
        click.echo(f"{r.purpose:12} {r.kid}  created {r.created_at}  {state}, {shown}")


commands: list[click.Command] = [admin, keys]
