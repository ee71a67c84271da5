"""The instance an operator command acts on.

Commands that change an instance (keys, registry, audit set-up, schema) act on the
folder ``xinyi init`` created and never create one implicitly: a missing
``XINYI_HOME`` would otherwise send them to ``./instance``, where they would quietly
make a new key folder encrypted with a generated passphrase and report success while
the service's real keys stay as they were.
"""

from __future__ import annotations

import os
from typing import Any

import click

from common.errors import ConfigError
from common.settings import Settings, load_settings
from keys.ring import DEV_PASSPHRASE_FILE


def settings_from(ctx: click.Context, **server: Any) -> Settings:
    """The settings of this invocation; ``server`` items that are not None override the
    file's ``server`` section (``host``, ``port``, ``public_url``)."""
    given = {k: v for k, v in server.items() if v is not None}
    return load_settings(
        (ctx.obj or {}).get("config_path"), overrides={"server": given} if given else None
    )


class InstanceMissing(ConfigError):
    code = "instance_missing"


def require_instance(settings: Settings) -> None:
    """Refuse when ``settings.home`` holds no instance, or when its keys could only be
    opened with a passphrase this process does not have."""
    home = settings.home
    if "XINYI_HOME" in os.environ:
        where = f"XINYI_HOME={home}"
    else:
        where = f"XINYI_HOME is not set, so {home} was tried"
    if not (home / "keys").is_dir():
        raise InstanceMissing(
            f"no instance here ({where}): set XINYI_HOME to the service's instance folder "
            "(the Environment= of its systemd unit), or create a new instance with "
            "`xinyi init`",
            code="instance_missing",
        )
    if settings.key_passphrase is None and not (home / DEV_PASSPHRASE_FILE).exists():
        raise InstanceMissing(
            f"XINYI_KEY_PASSPHRASE is not set ({where}): export the service's passphrase "
            "(its EnvironmentFile=) before changing this instance",
            code="passphrase_missing",
        )


def instance_settings(ctx: click.Context) -> Settings:
    """The settings of an existing instance (see ``require_instance``)."""
    settings = settings_from(ctx)
    require_instance(settings)
    return settings
