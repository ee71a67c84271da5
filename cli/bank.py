"""`xinyi bank`: the institution side (the bank SDK on the command line).

Every command works on the bank's folder (``--home``, default ``$XINYI_BANK_HOME`` or
``./bank``) whose keys are encrypted under ``$XINYI_BANK_PASSPHRASE``, and talks to the
gateway over HTTP (``--gateway URL``, default: the URL given at ``init``).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from bank.client import GatewayClient
from bank.errors import BankError
from bank.profile import HOME_ENV, BankProfile, passphrase_from_env
from bank.scoring import Refusal, Score, Scorer, grants_by_enterprise, read_applicants
from federated.models import OPERATOR

F = TypeVar("F", bound=Callable[..., Any])
CHINA = timezone(timedelta(hours=8))


def _home_default() -> str:
    return os.environ.get(HOME_ENV, "bank")


def _options(f: F) -> F:
    f = click.option(
        "--gateway", default=None, help="Gateway base URL (default: the one given at init)."
    )(f)
    f = click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=_home_default,
        show_default="$XINYI_BANK_HOME or ./bank",
        help="The bank's folder (keys encrypted with $XINYI_BANK_PASSPHRASE).",
    )(f)
    return f


@contextmanager
def _readable_errors() -> Iterator[None]:
    try:
        yield
    except BankError as e:
        click.echo(f"error: {e}", err=True)
        if e.audit_index is not None:
            click.echo(f"audit index of the refusal: {e.audit_index}", err=True)
        sys.exit(2)


def _open(home: Path, gateway: str | None) -> tuple[BankProfile, GatewayClient]:
    profile = BankProfile.open(home, passphrase_from_env())
    client = GatewayClient(gateway or profile.gateway, profile.institution_id, profile.signing_key)
    return profile, client


def _scorer(profile: BankProfile, client: GatewayClient, trust: tuple[str, ...] = ()) -> Scorer:
    context_id = profile.context_id(client.base_url)
    if context_id is None:
        raise BankError("context_not_found", f"no CKKS context registered at {client.base_url} yet")
    owners = (client.institution_id, OPERATOR, *trust)
    return Scorer(client, profile.secret, context_id, trusted_owners=owners)


@click.group(name="bank")
def group() -> None:
    """The institution side: keys, CKKS context, consent requests, scoring, training."""


@group.command("init")
@click.option("--id", "institution_id", required=True, help="The institution's client id.")
@_options
def init(institution_id: str, home: Path, gateway: str | None) -> None:
    """Create the bank's folder: an Ed25519 key for private_key_jwt and a CKKS key pair,
    both encrypted at rest."""
    with _readable_errors():
        if not gateway:
            raise BankError("invalid_input", "--gateway URL is required at init")
        profile = BankProfile.init(home, institution_id, gateway, passphrase_from_env())
        click.echo(f"bank {institution_id} initialized in {home}")
        click.echo(f"public JWK: {profile.jwk_path}")
        click.echo(
            "next: the operator runs "
            f"`xinyi admin add-institution {institution_id} --name NAME --jwk {profile.jwk_path}`, "
            "then `xinyi bank register-context`"
        )


@group.command("register-context")
@_options
def register_context(home: Path, gateway: str | None) -> None:
    """Register the bank's CKKS public context with the gateway (once per gateway)."""
    with _readable_errors():
        profile, client = _open(home, gateway)
        context_id = client.register_context(profile.secret.public_bytes())
        profile.remember_context(context_id, client.base_url)
        click.echo(f"context {context_id} registered at {client.base_url}")


@group.command("models")
@_options
def models(home: Path, gateway: str | None) -> None:
    """The joint models the gateway offers (their features and data categories)."""
    with _readable_errors():
        _, client = _open(home, gateway)
        for m in client.models():
            click.echo(
                f"{m['id']}@{m['version']}\towner: {m.get('owner', '?')}\t"
                f"bank features: {', '.join(m['bank_features'])}\t"
                f"needs consent to: {', '.join(m.get('grant_categories', m['gateway_categories']))}"
            )


@group.command("request-consent")
@click.option("--enterprise", required=True, help="The enterprise's USCC.")
@click.option("--purpose", required=True, help="A purpose code of the catalog.")
@click.option("--ops", default="score", show_default=True, help="Comma-separated operations.")
@click.option("--categories", default=None, help="Comma-separated data categories.")
@click.option("--model", "model_ref", default=None, help="Ask for this model's categories.")
@click.option("--days", type=int, default=30, show_default=True)
@click.option("--max-uses", type=int, default=10, show_default=True)
@_options
def request_consent(
    enterprise: str,
    purpose: str,
    ops: str,
    categories: str | None,
    model_ref: str | None,
    days: int,
    max_uses: int,
    home: Path,
    gateway: str | None,
) -> None:
    """Ask an enterprise for consent; prints the consent id to follow up on."""
    with _readable_errors():
        _, client = _open(home, gateway)
        cats = [c for c in (categories or "").split(",") if c]
        if model_ref:
            view = client.model(model_ref)
            cats = sorted(set(cats) | set(view.get("grant_categories", view["gateway_categories"])))
        if not cats:
            raise BankError("invalid_input", "name --categories or a --model")
        answer = client.request_consent(
            enterprise,
            purpose=purpose,
            ops=[o for o in ops.split(",") if o],
            categories=cats,
            duration_days=days,
            max_uses=max_uses,
        )
        click.echo(f"consent {answer['id']} is {answer['status']}")


@group.command("consent")
@click.argument("consent_id")
@_options
def consent(consent_id: str, home: Path, gateway: str | None) -> None:
    """Show a consent: status, scope, uses, and whether its grant is available."""
    with _readable_errors():
        _, client = _open(home, gateway)
        c = client.consent(consent_id)
        shown = {k: v for k, v in c.items() if k != "grant"}
        shown["grant"] = "available" if c.get("grant") else None
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


@group.command("alerts")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Only alerts after this one (the `next` printed last time).",
)
@_options
def alerts(after: int, home: Path, gateway: str | None) -> None:
    """Risk alerts about the enterprises this bank monitors (consent op monitor), oldest
    first, one a line: id, time (UTC+8), enterprise, kind, band before -> after, audit
    index; then the `next` to pass as --after. Kinds and bands only, never values."""
    with _readable_errors():
        _, client = _open(home, gateway)
        found, nxt = client.alerts(after=after)
        for a in found:
            at = datetime.fromtimestamp(int(a["at"]), CHINA).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(
                f"{a['id']}\t{at}\t{a['enterprise']}\t{a['kind']}\t"
                f"{a.get('from') or '-'} -> {a['to']}\taudit {a['audit_index']}"
            )
        click.echo(f"{len(found)} alert(s); next: {nxt}")


@group.command("score")
@click.option(
    "--model",
    "model_ref",
    required=True,
    help="Model id@version (an id alone is pinned to its newest approved version).",
)
@click.option(
    "--trust-owner",
    "trust",
    multiple=True,
    help="Also accept models of this owner (default: this bank's own and the operator's).",
)
@click.option("--enterprise", default=None, help="Score this enterprise (USCC) …")
@click.option("--grant", default=None, help="… or the enterprise behind this grant.")
@click.option(
    "--feature", "features", multiple=True, metavar="NAME=VALUE", help="A bank feature value."
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Applicants: a uscc or grant column and one column per bank feature.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="CSV of scores."
)
@_options
def score(
    model_ref: str,
    enterprise: str | None,
    grant: str | None,
    features: tuple[str, ...],
    csv_path: Path | None,
    out: Path | None,
    trust: tuple[str, ...],
    home: Path,
    gateway: str | None,
) -> None:
    """Score one enterprise (--enterprise/--grant with --feature) or a CSV (--csv) with
    one pinned model version of a trusted owner."""
    with _readable_errors():
        profile, client = _open(home, gateway)
        scorer = _scorer(profile, client, trust)
        model = scorer.model(model_ref)
        if "@" not in model_ref:
            click.echo(f"{model_ref} pinned to {model.ref} (of {model.owner})", err=True)
        if csv_path is not None:
            _score_csv(scorer, model, csv_path, out)
            return
        values: dict[str, float] = {}
        for item in features:
            name, sep, value = item.partition("=")
            try:
                values[name] = float(value)
            except ValueError:
                sep = ""
            if not sep:
                raise BankError("invalid_features", f"--feature {item!r}: use NAME=NUMBER")
        if grant is None:
            if enterprise is None:
                raise BankError("invalid_input", "name --enterprise, --grant or --csv")
            grant = grants_by_enterprise(client, model).get(enterprise)
            if grant is None:
                raise BankError(
                    "grant_missing",
                    f"no active consent of {enterprise} allows scoring with {model.ref}",
                )
        result = scorer.score(model, grant, values)
        click.echo(
            f"{model.ref}: probability {result.probability:.6f} (logit {result.logit:.6f}), "
            f"audit index {result.audit_index}"
        )


def _score_csv(scorer: Scorer, model: Any, path: Path, out: Path | None) -> None:
    applicants = read_applicants(path, model)
    known = grants_by_enterprise(scorer.client, model)
    grants: list[str] = []
    asked: list[int] = []
    results: dict[int, Score | Refusal] = {}
    for i, (uscc, grant) in enumerate(zip(applicants.usccs, applicants.grants, strict=True)):
        g = grant or (known.get(uscc) if uscc else None)
        if g is None:
            results[i] = Refusal(i, "grant_missing", "no active consent allows scoring", None)
            continue
        grants.append(g)
        asked.append(i)
    if asked:
        answers = scorer.score_batch(model, grants, applicants.features[asked])
        for i, answer in zip(asked, answers, strict=True):
            results[i] = answer
    sink = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.writer(sink)
        writer.writerow(["row", "uscc", "probability", "logit", "audit_index", "error"])
        for i in range(len(applicants.usccs)):
            r = results[i]
            if isinstance(r, Score):
                writer.writerow(
                    [
                        i,
                        applicants.usccs[i] or "",
                        f"{r.probability:.6f}",
                        f"{r.logit:.6f}",
                        r.audit_index,
                        "",
                    ]
                )
            else:
                writer.writerow(
                    [i, applicants.usccs[i] or "", "", "", r.audit_index or "", r.error]
                )
    finally:
        if out:
            sink.close()
    scored = sum(isinstance(r, Score) for r in results.values())
    click.echo(f"{scored} scored, {len(results) - scored} refused ({model.ref})", err=True)


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
    "--bank-features", default=None, help="Comma-separated bank columns (default: all others)."
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
@click.option("--progress/--no-progress", default=True, show_default=True)
@_options
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
    progress: bool,
    home: Path,
    gateway: str | None,
) -> None:
    """Train the joint model with the gateway (HE, neither side sees the other's data).

    The training set is the loan book's enterprises with an active op-train grant among
    the bank's consents; the gateway leaves out any it refuses and says so. A dropped
    connection resumes from the last completed batch."""
    import httpx

    from bank.training import (
        TokenAuth,
        grant_categories,
        read_loan_book,
        train_grants,
        train_with_gateway,
        write_report,
    )

    def names(text: str | None) -> list[str]:
        return [c.strip() for c in (text or "").split(",") if c.strip()]

    columns = names(gateway_features)
    book = read_loan_book(
        loan_book,
        uscc_column=uscc_column,
        label_column=label_column,
        features=names(bank_features) or None,
        log1p=names(log_columns),
    )
    with _readable_errors():
        profile, client = _open(home, gateway)
        http = httpx.Client(base_url=client.base_url, auth=TokenAuth(client.token), timeout=300)
        categories = grant_categories(http, columns)
        grants = train_grants(client.consents(status="active"), categories)
        click.echo(
            f"{len(grants)} enterprises have granted {profile.institution_id} op train on "
            f"{', '.join(categories)}"
        )
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
        click.echo(
            f"joint model {outcome.model['id']}@{outcome.model['version']} registered, "
            "pending the operator's approval (it serves once approved)"
        )
    else:
        click.echo("the gateway keeps its half; the bank's half is in the report (not served)")
    click.echo(f"report: {report} and {png}")
