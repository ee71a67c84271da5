"""The instance folder and what is written into it belong to the gateway's user alone:
``xinyi init`` makes the home 0700 and its database 0600 whatever the umask, ``xinyi
serve`` refuses a home others can read, generated dev secrets are 0600 from their first
byte and never written through a planted link, ``xinyi data synth`` writes 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from common.files import SecretFileUnsafe, generated_secret
from common.settings import load_settings
from gateway import _session_secret
from keys.ring import unsafe_dev_passphrase


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The umask a shell usually has (files 0644, folders 0755)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def xinyi(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_init_in_an_open_folder_makes_it_private(tmp_path: Path, permissive_umask: None) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    assert mode(home) == 0o755
    env = {"XINYI_HOME": str(home), "XINYI_KEY_PASSPHRASE": "files-test"}
    code, out = xinyi(env, "init")
    assert code == 0, out
    assert mode(home) == 0o700
    db_files = sorted(home.glob("xinyi.db*"))
    assert db_files and home / "xinyi.db" in db_files
    for path in db_files:  # the database and its -wal / -shm
        assert mode(path) == 0o600, (path, oct(mode(path)))
    assert os.umask(0o022) == 0o022  # init gave the process its umask back


def test_serve_refuses_a_home_others_can_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"XINYI_HOME": str(home), "XINYI_KEY_PASSPHRASE": "files-test"}
    assert xinyi(env, "init")[0] == 0
    home.chmod(0o755)
    code, out = xinyi(env, "serve", "--port", "1")  # refused before anything binds
    assert code == 2, out
    assert "home_permissions" in out and "chmod 700" in out


def test_dev_secrets_are_created_private_and_never_through_a_link(
    tmp_path: Path, permissive_umask: None
) -> None:
    home = tmp_path / "home"
    settings = load_settings(env={"XINYI_HOME": str(home)})
    secret = _session_secret(settings)
    assert len(secret) >= 32
    assert mode(home / "dev-session-secret") == 0o600
    assert _session_secret(settings) == secret  # read back, not made again
    passphrase = unsafe_dev_passphrase(home)
    assert mode(home / "UNSAFE-dev-key-passphrase") == 0o600
    assert unsafe_dev_passphrase(home) == passphrase

    # A link planted where the secret will be: nothing is written through it.
    planted = tmp_path / "other"
    planted.mkdir()
    target = planted / "stolen"
    (planted / "home2").mkdir(mode=0o700)
    link = planted / "home2" / "dev-session-secret"
    link.symlink_to(target)
    with pytest.raises(SecretFileUnsafe):
        generated_secret(link)
    assert not target.exists()


def test_a_readable_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dev-session-secret"
    path.write_text("x" * 43)
    path.chmod(0o644)
    with pytest.raises(SecretFileUnsafe):
        generated_secret(path)


def test_synthetic_city_files_are_private(tmp_path: Path, permissive_umask: None) -> None:
    out = tmp_path / "city"
    code, text = xinyi(
        {"XINYI_HOME": str(tmp_path / "home")},
        "data",
        "synth",
        "--enterprises",
        "60",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert code == 0, text
    assert mode(out) == 0o700
    files = list(out.iterdir())
    assert any(p.name == "bank_loans.csv" for p in files)
    for path in files:
        assert mode(path) == 0o600, path
