"""`xinyi bank`: The institution side: keys, CKKS context, consent requests, scoring, training."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="bank")
def group() -> None:
    """The institution side: keys, CKKS context, consent requests, scoring, training."""


# --- xinyi bank train (federated training; owned by the training area) --------------------


@group.command("train")
@click.option(
    "--loan-book",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="CSV: a USCC column, a 0/1 label and the bank's features.",
)
@click.option(
    "--gateway-features",
    required=True,
    help="Comma-separated gateway columns (e.g. log1p(tax.paid_12m),tax.credit_rating).",
)
@click.option("--uscc-column", default="uscc", show_default=True)
@click.option("--label-column", default="default", show_default=True)
@click.option(
    "--bank-features",
    default=None,
    help="Comma-separated bank columns (default: every other column).",
)
@click.option(
    "--log1p",
    "log_columns",
    default="",
    help="Comma-separated bank columns used as log(1 + x) (amounts).",
)
@click.option("--epochs", type=click.IntRange(1, 1000), default=16, show_default=True)
@click.option("--batch-size", type=click.IntRange(16, 4096), default=None)
@click.option("--learning-rate", type=float, default=0.1, show_default=True)
@click.option("--l2", type=float, default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--validation-fraction", type=float, default=0.1, show_default=True)
@click.option("--model-id", default=None, help="The joint model's id when registered.")
@click.option(
    "--register/--no-register",
    default=False,
    show_default=True,
    help="Consent to serving: send the bank's half so the gateway registers the model.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("training-report.json"),
    show_default=True,
    help="Training report (JSON); its plot is written next to it (PNG).",
)
@click.option("--gateway", default=None, help="Gateway base URL (default: the one given at init).")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The bank's folder (default $XINYI_BANK_HOME or ./bank).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(
    loan_book: Path,
    gateway_features: str,
    uscc_column: str,
    label_column: str,
    bank_features: str | None,
    log_columns: str,
    epochs: int,
    batch_size: int | None,
    learning_rate: float,
    l2: float,
    seed: int,
    validation_fraction: float,
    model_id: str | None,
    register: bool,
    report: Path,
    gateway: str | None,
    home: Path | None,
    progress: bool,
) -> None:
    """Train the joint model with the gateway (HE, neither side sees the other's data).

    The training set is the loan book's enterprises with an active op-train grant among
    the bank's consents; the gateway leaves out any it refuses and says so. A dropped
    connection resumes from the last completed batch."""
    import os

    import httpx

    from bank.client import GatewayClient
    from bank.profile import HOME_ENV, BankProfile, passphrase_from_env
    from bank.training import (
        TokenAuth,
        column_categories,
        read_loan_book,
        train_grants,
        train_with_gateway,
        write_report,
    )

    columns = [c.strip() for c in gateway_features.split(",") if c.strip()]
    book = read_loan_book(
        loan_book,
        uscc_column=uscc_column,
        label_column=label_column,
        features=[c.strip() for c in bank_features.split(",")] if bank_features else None,
        log1p=[c.strip() for c in log_columns.split(",") if c.strip()],
    )
    profile = BankProfile.open(
        home or Path(os.environ.get(HOME_ENV, "bank")), passphrase_from_env()
    )
    client = GatewayClient(gateway or profile.gateway, profile.institution_id, profile.signing_key)
    grants = train_grants(client.consents(status="active"), column_categories(columns))
    click.echo(f"{len(grants)} enterprises have granted op train to {profile.institution_id}")
    http = httpx.Client(base_url=client.base_url, auth=TokenAuth(client.token), timeout=300)
    outcome = train_with_gateway(
        http,
        book,
        grants,
        columns,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        l2=l2,
        seed=seed,
        validation_fraction=validation_fraction,
        model_id=model_id,
        register=register,
        progress=progress,
        say=click.echo,
    )
    png = write_report(outcome.report, report)
    if outcome.model:
        click.echo(f"joint model {outcome.model['id']}@{outcome.model['version']} registered")
    else:
        click.echo("the gateway keeps its half; the bank's half is in the report (not served)")
    click.echo(f"report: {report} and {png}")
