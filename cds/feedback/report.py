"""``restless-cds feedback report`` output: a terminal table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from cds.feedback.records import ReportRow

__all__ = ["render_report"]

_COLUMNS = ("rule", "rules_version", "issued", "accepted", "overridden", "acceptance", "reasons")


def _cells(row: ReportRow) -> list[str]:
    rate = row.acceptance_rate
    reasons = "; ".join(f"{code} x{n}" for code, n in sorted(row.override_reasons.items()))
    return [
        row.rule_id,
        row.rules_version,
        str(row.issued),
        str(row.accepted),
        str(row.overridden),
        "-" if rate is None else f"{rate:.0%}",
        reasons or "-",
    ]


def render_report(rows: Sequence[ReportRow], output: str) -> str:
    if output == "json":
        data = [
            {
                "rule_id": r.rule_id,
                "rules_version": r.rules_version,
                "issued": r.issued,
                "accepted": r.accepted,
                "overridden": r.overridden,
                "acceptance_rate": r.acceptance_rate,
                "override_reasons": dict(sorted(r.override_reasons.items())),
            }
            for r in rows
        ]
        return json.dumps(data, indent=2) + "\n"
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_COLUMNS)
        writer.writerows(_cells(r) for r in rows)
        return buffer.getvalue()
    table = [list(_COLUMNS), *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in table
    ]
    if not rows:
        lines.append("(no cards issued in this period)")
    return "\n".join(line.rstrip() for line in lines) + "\n"
