"""`xinyi stats`: the month's financing statistics (JY 三(三)3; docs/financing.md).

``export`` writes the monthly report as ``.xlsx``, one sheet per table: the summary
(national caliber, with the shares of the market entities against the targets), by
division, by institution, 成效 per department (JY 三(二)2) and the monthly supervision
form of JY 附件3 with the platform's counts filled in. The figures are those
``GET /v1/statistics`` answers (the same function computes both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from common.db import make_engine
from gateway.financing import FLOW_FIELDS, department_efficacy, statistics_report

SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("registered", "注册企业数 Registered enterprises"),
    ("real_name", "实名认证企业数 Real-name enterprises"),
    ("authorizing", "授权企业数 Authorizing enterprises"),
    ("market_entities", "市场主体数 Market entities"),
    ("applications", "融资申请笔数 Applications"),
    ("approved", "获批笔数 Approved"),
    ("credit_lines", "授信额度（元） Credit lines (CNY)"),
    ("disbursed", "放贷金额（元） Disbursed (CNY)"),
    ("credit_loan_disbursed", "信用贷款放款金额（元） Credit-loan disbursed (CNY)"),
    ("credit_loan_share", "信用贷款占比 Credit-loan share"),
    ("first_loans", "首贷户数 First-loan borrowers"),
    ("weighted_rate", "加权平均利率（%） Weighted average rate (%)"),
)
SHARE_ROWS: tuple[tuple[str, str], ...] = (
    ("registered", "注册企业占市场主体比例 Registered share"),
    ("real_name", "实名认证企业占市场主体比例 Real-name share"),
    ("authorizing", "授权企业占市场主体比例 Authorizing share"),
)
REGION_COLUMNS = (
    "region",
    "registered",
    "real_name",
    "authorizing",
    "market_entities",
    *FLOW_FIELDS,
    "node",  # nodes: whose figures (a parent lists its children's; docs/network.md)
)
# JY 附件3 江阴市"澄易贷"专项工作推进督查表: its columns, in its order.
SUPERVISION_COLUMNS = (
    "序号",
    "制订出台相关文件或实施上级“信易贷”政策文件",
    "推进企业注册、认证、查询数量",
    "创新工作",
    "落实进展情况",
    "问题困难及工作建议",
)


def _settings(ctx: click.Context) -> Any:
    from cli.instance import settings_from

    return settings_from(ctx)


@click.group(name="stats")
def group() -> None:
    """The financing statistics by the national caliber (JY 三(三)3)."""


@group.command("export")
@click.option("--month", required=True, help="YYYY-MM (China Standard Time).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export(ctx: click.Context, month: str, out: Path) -> None:
    """Write MONTH's report to OUT (.xlsx), one sheet per table."""
    settings = _settings(ctx)
    engine = make_engine(settings.database_url)
    try:
        report = statistics_report(settings, engine, month)
        efficacy = department_efficacy(engine, month)
    finally:
        engine.dispose()
    names = {d.id: d.name for d in settings.config.departments}
    write_workbook(report, efficacy, names, out)
    click.echo(
        f"wrote {out}: {report['month']}, {report['approved']} approved, "
        f"{report['disbursed']} CNY disbursed"
    )


def write_workbook(
    report: dict[str, Any],
    efficacy: dict[str, dict[str, int]],
    department_names: dict[str, str],
    out: Path,
) -> None:
    """The workbook (written to a temporary name, then moved: never half a file)."""
    from openpyxl import Workbook

    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = "汇总 Summary"
    summary.append(["月份 Month", report["month"]])
    for key, label in SUMMARY_ROWS:
        summary.append([label, report[key]])
    for key, label in SHARE_ROWS:
        summary.append([label, report["shares"][key]])
        summary.append([f"{label} — 目标 target", report["targets"][key]])
    regions = wb.create_sheet("按地区 By region")
    regions.append(list(REGION_COLUMNS))
    for row in report["by_region"]:
        regions.append([row.get(c) for c in REGION_COLUMNS])
    institutions = wb.create_sheet("按机构 By institution")
    institutions.append(["institution", *FLOW_FIELDS, "authorized_in_month"])
    for row in report["by_institution"]:
        institutions.append(
            [row["institution"], *(row[c] for c in FLOW_FIELDS), row["authorized_in_month"]]
        )
    effect = wb.create_sheet("成效 Efficacy")
    effect.append(["department", "name", "loans", "disbursed"])
    for dept in sorted(efficacy):
        fig = efficacy[dept]
        effect.append([dept, department_names.get(dept, dept), fig["loans"], fig["disbursed"]])
    form = wb.create_sheet("督查表 附件3")
    form.append(list(SUPERVISION_COLUMNS))
    form.append(
        [
            1,
            "",
            f"注册 {report['registered']}，实名认证 {report['real_name']}，"
            f"授权 {report['authorizing']}（{report['month']}）",
            "",
            f"融资申请 {report['applications']} 笔，获批 {report['approved']} 笔，"
            f"放贷 {report['disbursed']} 元",
            "",
        ]
    )
    tmp = out.with_name(out.name + ".tmp")
    wb.save(tmp)
    tmp.replace(out)
