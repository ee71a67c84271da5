"""`xinyi data`: department data: import, history, synthetic city.

``xinyi data import`` exits 0 only when the file was loaded; 1 when the file was
refused (every problem is listed, and written to the rejects CSV); 2 for other errors.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from common.db import make_engine
from common.errors import Unavailable
from records import store, synth
from records.catalog import Catalog
from records.importer import Checked, rejects_csv
from records.service import ImportRejected, import_csv

SHOWN_REJECTS = 20


def _settings(ctx: click.Context) -> Any:
    from cli.instance import settings_from

    return settings_from(ctx)


@click.group(name="data")
def group() -> None:
    """Department data: import, history, synthetic city."""


@contextmanager
def _bar(desc: str, total: int, unit: str) -> Iterator[Any]:
    """A tqdm bar on a terminal (stderr), silent otherwise."""
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
        leave=False,
    )
    try:
        yield bar
    finally:
        bar.close()


def _to(bar: Any) -> Callable[[int], None]:
    """``update(done)`` for a bar that counts up to ``done``."""

    def update(done: int) -> None:
        bar.update(max(done - bar.n, 0))

    return update


def _pseudonym_key(settings: Any, catalog: Catalog, department: str, data: bytes) -> bytes | None:
    """The key store's pseudonym key when the file's header names a keyed-hash column
    (the legal representative's id, records/pseudonyms.py); unlocking the key store
    costs a key derivation, so other files do without it."""
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    keyed = [
        fid for fid, rule in catalog.department_features(department).items() if rule.spec.keyed_hash
    ]
    if not any(fid in header for fid in keyed):
        return None
    from keys import KeyRing
    from records.pseudonyms import LEGAL_REP_ID

    return KeyRing(settings).pseudonym_key(LEGAL_REP_ID)


@group.command("import")
@click.argument("department")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the rejects CSV when the file is refused "
    "(default: FILE.rejects.csv beside FILE).",
)
@click.pass_context
def import_(ctx: click.Context, department: str, file: Path, rejects_path: Path | None) -> None:
    """Load FILE (CSV: a `uscc` column plus DEPARTMENT's feature ids) as DEPARTMENT's
    next snapshot. All or nothing: one bad row loads nothing, and every bad row is
    reported with its line number, column and reason."""
    settings = _settings(ctx)
    engine = make_engine(settings.database_url)
    catalog = Catalog(settings.config)
    data = file.read_bytes()
    estimate = max(data.count(b"\n") - 1, 1)
    pseudonym_key = _pseudonym_key(settings, catalog, department, data)
    try:
        with _bar("checking", estimate, "rows") as checking, _bar("writing", 0, "rows") as writing:

            def before_write(checked: Checked) -> None:
                checking.close()
                writing.reset(total=len(checked.rows))

            record = import_csv(
                engine,
                catalog,
                department,
                data,
                file_name=file.name,
                actor=f"cli:{getpass.getuser()}",
                on_checked=_to(checking),
                on_written=_to(writing),
                before_write=before_write,
                pseudonym_key=pseudonym_key,
            )
    except ImportRejected as refused:
        _report_rejects(refused, file, rejects_path)
        sys.exit(1)
    except SQLAlchemyError as e:
        raise Unavailable(
            f"the database cannot take the import ({type(e).__name__}); "
            "is the instance initialized (xinyi init)?",
            code="database_unavailable",
        ) from e
    finally:
        engine.dispose()
    click.echo(
        f"loaded {record.row_count} rows of {department} as snapshot v{record.version} "
        f"(import {record.id}; features: {', '.join(record.features)})"
    )


def _report_rejects(refused: ImportRejected, file: Path, rejects_path: Path | None) -> None:
    rejects = refused.all_rejects
    record = refused.record
    click.echo(
        f"refused: {len(rejects)} problems in {record.bad_rows or 'the header of'} "
        f"{'rows' if record.bad_rows else 'the file'} of {file.name} "
        f"({record.row_count} rows read); nothing was loaded",
        err=True,
    )
    for r in rejects[:SHOWN_REJECTS]:
        where = f"line {r.line}" + (f", {r.column}" if r.column else "")
        click.echo(f"  {where}: {r.code}: {r.reason}", err=True)
    if len(rejects) > SHOWN_REJECTS:
        click.echo(f"  … and {len(rejects) - SHOWN_REJECTS} more", err=True)
    path = rejects_path or file.with_name(file.name + ".rejects.csv")
    try:
        path.write_text(rejects_csv(rejects), encoding="utf-8")
        click.echo(f"all problems: {path}", err=True)
    except OSError as e:
        click.echo(f"could not write the rejects file {path}: {e.strerror}", err=True)


@group.command("history")
@click.argument("department")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
def history(ctx: click.Context, department: str, limit: int) -> None:
    """DEPARTMENT's import attempts, newest first."""
    settings = _settings(ctx)
    engine = make_engine(settings.database_url)
    try:
        records = store.import_history(engine, department, limit=limit)
    finally:
        engine.dispose()
    if not records:
        click.echo(f"no imports of {department}")
    for r in records:
        version = f"v{r.version}" if r.version is not None else "-"
        click.echo(
            f"{r.id:>6}  {version:>5}  {r.status:<8}  {r.row_count:>9} rows  "
            f"{r.reject_count:>7} rejects  {r.file_name}  by {r.imported_by}"
        )


@group.command("synth")
@click.option("--enterprises", type=click.IntRange(1, 10_000_000), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=synth.DEFAULT_AS_OF.isoformat(),
    show_default=True,
    help="The day the city's 12-month windows end.",
)
@click.pass_context
def synth_(ctx: click.Context, enterprises: int, seed: int, out: Path, as_of: Any) -> None:
    """Write a synthetic city to OUT: one CSV per department of the catalog, a bank's
    labelled loan book (bank_loans.csv) and city.json."""
    settings = _settings(ctx)
    day: date = as_of.date()
    city = synth.generate(Catalog(settings.config), enterprises, seed, as_of=day)
    for path in synth.write(city, out):
        rows = f"{len(city.tables[path.stem])} rows" if path.stem in city.tables else ""
        click.echo(f"{path}  {rows}".rstrip())
    click.echo(f"default rate in the loan book: {city.default_rate:.1%}")
