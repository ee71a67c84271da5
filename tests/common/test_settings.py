"""config.yaml is loaded once into a frozen object; a bad file names the bad key."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from common.errors import ConfigError
from common.settings import DEFAULT_CONFIG, load_settings


def _write(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_bundled_config_loads_and_is_frozen(tmp_path: Path) -> None:
    s = load_settings(env={"XINYI_HOME": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'xinyi.db'}"
    assert s.config.categories["tax"].visibility == "non_public"
    assert s.feature("tax.paid_12m")[2].unit == "CNY"
    with pytest.raises(ValidationError):
        s.config.server.port = 1  # type: ignore[misc]


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    s = load_settings(
        env={
            "XINYI_HOME": str(tmp_path),
            "XINYI_KEY_PASSPHRASE": "pw",
            "XINYI_DATABASE_URL": "postgresql://u:p@h/db",
        }
    )
    assert s.key_passphrase is not None and s.key_passphrase.get_secret_value() == "pw"
    assert "pw" not in repr(s)
    assert s.database_url == "postgresql://u:p@h/db"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r["server"].__setitem__("port", "eighty"), "server.port"),
        (lambda r: r["server"].__setitem__("prot", 80), "server.prot"),
        (
            lambda r: r["purposes"]["working_capital_loan"].__setitem__("ops", ["lend"]),
            "purposes.working_capital_loan.ops.0",
        ),
        (
            lambda r: r["categories"]["tax"]["features"]["paid_12m"].__setitem__("bands", [5, 1]),
            "categories.tax.features.paid_12m",
        ),
        (
            lambda r: r["categories"]["tax"].__setitem__("visibility", "secret"),
            "categories.tax.visibility",
        ),
    ],
)
def test_bad_config_names_the_path_of_the_bad_key(tmp_path: Path, mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    bad = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as e:
        load_settings(bad, env={"XINYI_HOME": str(tmp_path)})
    assert e.value.details["path"] == path
    assert path in e.value.message


def test_unknown_department_reference_is_refused(tmp_path: Path) -> None:
    bad = _write(tmp_path, lambda r: r["categories"]["tax"].__setitem__("department", "nope"))
    with pytest.raises(ConfigError, match="nope"):
        load_settings(bad, env={"XINYI_HOME": str(tmp_path)})


def test_not_yaml_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("a: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(p, env={})


def test_the_retired_training_mask_bits_key_loads_with_a_warning(tmp_path: Path) -> None:
    """No code reads ``training.mask_bits`` since the sum-only training protocol; a
    config copied from an older default still loads, and says the key is ignored."""
    assert "mask_bits" not in DEFAULT_CONFIG.read_text(encoding="utf-8")
    with pytest.warns(UserWarning, match=r"training\.mask_bits is no longer used"):
        s = load_settings(
            env={"XINYI_HOME": str(tmp_path)}, overrides={"training": {"mask_bits": 36}}
        )
    assert not hasattr(s.config.training, "mask_bits")
    # Any other unknown key is still refused.
    with pytest.raises(ConfigError):
        load_settings(env={"XINYI_HOME": str(tmp_path)}, overrides={"training": {"mask": 1}})
