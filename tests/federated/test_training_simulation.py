"""`xinyi federated simulate`: two processes, real encryption, the models-import format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from common.errors import InvalidInput
from federated.simulate import read_party_csv, split_rows
from federated.training import roc_auc

CONTRACT_FIELDS = {
    "id",
    "gateway_features",
    "bank_features",
    "gateway_weights",
    "bank_weights",
    "intercept",
    "gateway_standardization",
}


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def csvs(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    n = 700
    ids = [f"E{k:05d}" for k in range(n)]
    xb = rng.normal(size=(n, 3)) * [1, 50, 0.1] + [0, 200, 3]
    xg = rng.normal(size=(n, 4))
    logit = xb[:, 0] + (xb[:, 1] - 200) / 50 - xg[:, 0] + 0.5 * xg[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    bank = tmp_path / "bank.csv"
    gateway = tmp_path / "gateway.csv"
    write_csv(
        bank,
        ["id", "label", "income", "balance", "ratio"],
        [[ids[k], y[k], *xb[k]] for k in range(n - 20)],  # the last 20 only at the gateway
    )
    order = rng.permutation(n)[: n - 5]  # another order; 5 only at the bank
    write_csv(
        gateway,
        ["id", "tax.paid_12m", "social_security.headcount", "utilities.power_kwh", "court.cases"],
        [[ids[k], *xg[k]] for k in order],
    )
    truth = {"ids": np.asarray(ids), "xb": xb, "xg": xg, "y": y, "gateway_order": order}
    return bank, gateway, truth


def test_simulate_writes_the_joint_model_and_reports_time_and_bytes(
    csvs: tuple[Path, Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    bank, gateway, truth = csvs
    train_ids = tmp_path / "train.txt"
    train_ids.write_text("id\n" + "\n".join(truth["ids"][:500]) + "\n", encoding="utf-8")
    out, report = tmp_path / "model.json", tmp_path / "report.json"
    result = CliRunner().invoke(
        main,
        [
            "federated",
            "simulate",
            "--bank-csv",
            str(bank),
            "--gateway-csv",
            str(gateway),
            "--id-column",
            "id",
            "--label-column",
            "label",
            "--train-ids",
            str(train_ids),
            "--epochs",
            "4",
            "--out",
            str(out),
            "--report",
            str(report),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    model = json.loads(out.read_text())
    assert set(model) == CONTRACT_FIELDS
    assert model["id"] == "model"
    assert model["bank_features"] == ["income", "balance", "ratio"]
    assert model["gateway_features"] == [
        "tax.paid_12m",
        "social_security.headcount",
        "utilities.power_kwh",
        "court.cases",
    ]
    std = model["gateway_standardization"]
    assert len(std["mean"]) == len(std["std"]) == 4 and std["clip"] == [3.0] * 4

    # The contract formula on raw features ranks the held-out rows well.
    held = np.arange(500, 680)
    zg = np.clip((truth["xg"][held] - std["mean"]) / std["std"], -3, 3)
    logits = (
        model["intercept"]
        + zg @ model["gateway_weights"]
        + truth["xb"][held] @ model["bank_weights"]
    )
    assert roc_auc(truth["y"][held], logits) > 0.75

    # The scoring side reads the same file and computes the same logit.
    from federated.models import parse_model

    served = parse_model(model)
    for k in (500, 600):
        assert served.logit(truth["xg"][k], truth["xb"][k]) == pytest.approx(
            float(logits[k - 500]), abs=1e-9
        )

    r = json.loads(report.read_text())
    common = set(truth["ids"][: 700 - 20]) & set(truth["ids"][truth["gateway_order"]])
    train = common & set(truth["ids"][:500])
    assert r["rows"] == {"train": len(train), "validation": len(common) - len(train)}
    assert r["bytes"]["bank_to_gateway"] > 1_000_000 and r["bytes"]["gateway_to_bank"] > 1_000_000
    assert [e["epoch"] for e in r["bytes"]["per_epoch"]] == [0, 1, 2, 3]
    assert len(r["epochs"]) == 4 and all(e["validation_auc"] > 0.7 for e in r["epochs"])
    assert r["seconds"]["training"] > 0
    assert report.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert "bank→gateway" in result.output


def test_a_bad_cell_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write_csv(path, ["id", "y", "a"], [["1", 0, 1.5], ["2", 1, "x"], ["1", 0, 3], ["4", 1, "nan"]])
    with pytest.raises(InvalidInput) as e:
        read_party_csv(path, "id", "y")
    assert "line 3" in e.value.message and "line 4" in e.value.message
    assert "line 5" in e.value.message
    with pytest.raises(InvalidInput, match="no label column"):
        read_party_csv(path, "id", "label")


def test_rows_are_the_common_ids_in_the_bank_order() -> None:
    split = split_rows(["c", "a", "b", "z"], ["b", "a", "c"], ["a", "c", "q"], 0.0, 0)
    assert split.train == ["c", "a"] and split.validation == ["b"]
    with pytest.raises(InvalidInput, match="training rows"):
        split_rows(["a"], ["a"], None, 0.0, 0)


def test_simulate_refuses_a_missing_label_column_with_a_clear_error(
    csvs: tuple[Path, Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    bank, gateway, _ = csvs
    result = CliRunner().invoke(
        main,
        [
            "federated",
            "simulate",
            "--bank-csv",
            str(bank),
            "--gateway-csv",
            str(gateway),
            "--id-column",
            "id",
            "--label-column",
            "default",
            "--out",
            str(tmp_path / "m.json"),
        ],
    )
    assert result.exit_code == 2
    assert not (tmp_path / "m.json").exists()
