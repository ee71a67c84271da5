"""`xinyi federated`: Federated training of joint models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from common.errors import InvalidInput


@click.group(name="federated")
def group() -> None:
    """Federated training of joint models."""


def read_id_list(path: Path, id_column: str) -> list[str]:
    """One id per line; blank lines ignored; a first line equal to the id column name is a
    header."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}", code="invalid_ids") from e
    ids = [line for line in lines if line]
    if ids and ids[0] == id_column:
        ids = ids[1:]
    if not ids:
        raise InvalidInput(f"{path}: no ids", code="invalid_ids")
    return ids


@group.command()
@click.option(
    "--bank-csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The bank's CSV: id, label and the bank's feature columns.",
)
@click.option(
    "--gateway-csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The gateway's CSV: id and the department feature columns.",
)
@click.option("--id-column", required=True, help="The column that identifies a row in both.")
@click.option("--label-column", required=True, help="The bank's 0/1 (or -1/1) label column.")
@click.option(
    "--train-ids",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Ids that train (one a line); the other common ids validate.",
)
@click.option("--epochs", type=click.IntRange(1, 1000), default=16, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(16, 4096),
    default=None,
    help="Rows per batch (default: about eight batches per epoch, at most 4096).",
)
@click.option(
    "--learning-rate",
    type=float,
    default=0.1,
    show_default=True,
    help="Adam's learning rate at the first step (cosine decay to 0).",
)
@click.option("--l2", type=float, default=1e-4, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Batch order and, without --train-ids, the validation split.",
)
@click.option(
    "--validation-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Without --train-ids: the share of common rows that validates.",
)
@click.option("--model-id", default=None, help="The model's id (default: the --out file name).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the model (the `xinyi models import` JSON).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the training report (JSON) here, and its plot next to it (PNG).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def simulate(
    bank_csv: Path,
    gateway_csv: Path,
    id_column: str,
    label_column: str,
    train_ids: Path | None,
    epochs: int,
    batch_size: int | None,
    learning_rate: float,
    l2: float,
    seed: int,
    validation_fraction: float,
    model_id: str | None,
    out: Path,
    report: Path | None,
    progress: bool,
) -> None:
    """Run the training protocol with the bank and the gateway in two processes (real
    encryption, the same messages as over HTTP) and write the joint model."""
    from federated.simulate import SimulationConfig
    from federated.simulate import simulate as run

    ids = read_id_list(train_ids, id_column) if train_ids is not None else None
    config = SimulationConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        l2=l2,
        seed=seed,
        validation_fraction=validation_fraction,
        progress=progress,
    )
    result = run(
        bank_csv,
        gateway_csv,
        id_column=id_column,
        label_column=label_column,
        train_ids=ids,
        config=config,
        model_id=model_id or out.stem,
    )
    from federated.training import import_json

    out.write_text(json.dumps(import_json(result.model), indent=2) + "\n", encoding="utf-8")
    r = result.report
    click.echo(
        f"trained on {r['rows']['train']} rows ({r['rows']['validation']} validate), "
        f"{r['features']['bank']} bank + {r['features']['gateway']} gateway features"
    )
    for e in r["epochs"]:
        auc = (
            ""
            if e["validation_auc"] is None
            else f"  validation AUC of the bank half {e['validation_auc']:.4f}"
        )
        click.echo(f"  epoch {e['epoch']:>3}  loss {e['loss']:.5f}{auc}  {e['seconds']:.2f} s")
    b = r["bytes"]
    epochs_n = max(1, len(r["epochs"]))
    click.echo(
        f"wall {r['seconds']['wall']} s (training {r['seconds']['training']} s); bytes "
        f"bank→gateway {b['bank_to_gateway']:,}, gateway→bank {b['gateway_to_bank']:,} "
        f"(per epoch {(b['bank_to_gateway'] + b['gateway_to_bank']) // epochs_n:,})"
    )
    click.echo(f"model written to {out}")
    if report is not None:
        from bank.training import write_report

        png = write_report(r, report)
        click.echo(f"report written to {report} and {png}")
