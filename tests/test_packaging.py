"""What a wheel install needs ships inside the package: the default configuration and
the Alembic migrations, so ``xinyi init`` works with no checkout; and no other installed
distribution claims one of our top-level import names."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from common.db import MIGRATIONS
from common.settings import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DISTRIBUTION = PYPROJECT["project"]["name"]
TOP_LEVEL = [
    name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
]


def test_the_default_config_and_migrations_are_package_resources() -> None:
    config = importlib.resources.files("common").joinpath("default_config.yaml")
    assert config.is_file() and Path(str(config)) == DEFAULT_CONFIG
    migrations = importlib.resources.files("migrations")
    assert Path(str(migrations)) == MIGRATIONS
    assert migrations.joinpath("env.py").is_file()
    assert migrations.joinpath("script.py.mako").is_file()
    versions = [p.name for p in migrations.joinpath("versions").iterdir() if p.name[0].isdigit()]
    assert "0001_foundation.py" in versions


def test_no_other_installed_distribution_claims_our_import_names() -> None:
    claims = importlib.metadata.packages_distributions()
    assert len(TOP_LEVEL) >= 10
    for name in TOP_LEVEL:
        others = {d for d in claims.get(name, []) if d.replace("_", "-") != DISTRIBUTION}
        assert not others, f"{name!r} is also installed by {sorted(others)}"


@pytest.mark.slow
def test_xinyi_init_runs_from_the_wheel_with_no_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in TOP_LEVEL:
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = wheels.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "common/default_config.yaml",
        "migrations/env.py",
        "migrations/script.py.mako",
    } <= shipped
    assert {n for n in shipped if n.startswith("migrations/versions/0")}
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    shutil.rmtree(source)  # nothing of a checkout is left to lean on
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XINYI_", "PYTHON"))} | {
        "PYTHONPATH": str(site),
        "XINYI_HOME": str(outside / "instance"),
        "XINYI_KEY_PASSPHRASE": "wheel-test-passphrase",
    }
    show = "import common, migrations; print(common.__file__, migrations.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", show],
        env=env, cwd=outside, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert all(p.startswith(str(site)) for p in where.stdout.split()), where.stdout
    done = subprocess.run(
        [sys.executable, "-m", "cli", "init"],
        env=env, cwd=outside, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (outside / "instance" / "xinyi.db").is_file()
