"""Renderers of a compliance :class:`~patchledger.app.reports.compliance.Report`: canonical
JSON, HTML with SVG charts (no script: the same document becomes the PDF), CSV and PDF.

Every rendering states the block height the report was computed at and the report's SHA-256:
the SHA-256 of its canonical JSON (:func:`canonical`), the same whatever the format, so that
``patchledger report kev --as-of D --format json | sha256sum`` checks any copy.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from patchledger.app.errors import UserError
from patchledger.app.reports.compliance import Report

_HERE = Path(__file__).resolve().parent
#: The reports' templates and stylesheet.
TEMPLATES = _HERE / "templates"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES),
                   autoescape=select_autoescape(["html"]))
FORMATS = ("html", "csv", "pdf", "json")
MEDIA_TYPES = {"html": "text/html", "csv": "text/csv", "pdf": "application/pdf",
               "json": "application/json"}


def canonical(report: Report) -> bytes:
    """The report's canonical JSON (sorted keys, no spaces), what its SHA-256 is of."""
    return json.dumps(report.as_dict(), sort_keys=True, separators=(",", ":")).encode()


def digest(report: Report) -> str:
    """The report's SHA-256 (hex) over :func:`canonical`."""
    return hashlib.sha256(canonical(report)).hexdigest()


def _bars(series: dict[str, dict[str, int]], width: int = 560) -> dict[str, Any]:
    """Geometry of a stacked horizontal bar chart (met / missed / open) for the template."""
    rows = []
    biggest = max([s["total"] for s in series.values()] + [1])
    scale = (width - 180) / biggest
    for i, (name, counts) in enumerate(series.items()):
        x = 170.0
        parts = []
        for key, colour in (("met", "#1e5e1e"), ("missed", "#8b1a1a"), ("open", "#9a6b00")):
            w = counts[key] * scale
            parts.append({"x": round(x, 1), "w": round(w, 1), "fill": colour, "n": counts[key],
                          "key": key})
            x += w
        rows.append({"name": name, "y": 10 + i * 26, "parts": parts, "total": counts["total"]})
    return {"rows": rows, "height": 30 + 26 * len(rows), "width": width}


def html(report: Report, *, stylesheet_href: str = "") -> str:
    """The report as an HTML document (inline ``<style>`` unless ``stylesheet_href`` is given,
    as the web UI does under its CSP)."""
    doc = report.as_dict()
    css = "" if stylesheet_href else (TEMPLATES / "report.css").read_text()
    kev: dict[str, Any] = doc["kev"]
    return _ENV.get_template("kev.html").render(
        r=doc, sha256=digest(report), css=css, stylesheet_href=stylesheet_href,
        chart_org=_bars(kev["by_organization"]), chart_group=_bars(kev["by_host_group"]),
        chart_sla=_bars(doc["sla_by_severity"]))


def csv_text(report: Report) -> str:
    """The report as CSV: every row names the policy and the as-of date; a preamble states
    the block height and the SHA-256."""
    doc = report.as_dict()
    policy: dict[str, Any] = doc["policy"]
    tag = f"{policy['policy_id']} v{policy['version']}"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["# report", "kev-remediation", "policy", tag, "as_of", doc["as_of"],
                     "block_height", doc["block_height"], "sha256", digest(report)])
    writer.writerow(["policy", "as_of", "section", "group", "met", "missed", "open", "total",
                     "value"])
    kev: dict[str, Any] = doc["kev"]
    rows: list[tuple[str, str, dict[str, int]]] = [("kev", "overall", kev["overall"])]
    rows += [("kev_by_organization", k, v) for k, v in kev["by_organization"].items()]
    rows += [("kev_by_host_group", k, v) for k, v in kev["by_host_group"].items()]
    rows += [("sla_by_severity", k, v)
             for k, v in doc["sla_by_severity"].items()]
    for section, group, t in rows:
        writer.writerow([tag, doc["as_of"], section, group, t["met"], t["missed"], t["open"],
                         t["total"], ""])
    writer.writerow([tag, doc["as_of"], "mttr_days", "overall", "", "", "", "",
                     "" if doc["mttr_days"] is None else doc["mttr_days"]])
    for month, days in doc["mttr_by_month"].items():
        writer.writerow([tag, doc["as_of"], "mttr_days", month, "", "", "", "", days])
    for e in doc["exposure"]:
        writer.writerow([tag, doc["as_of"], "exposure_days", e["vuln_id"], "", "", "", "",
                         e["exposure_days"]])
    for x in doc["open_exceptions"]:
        writer.writerow([tag, doc["as_of"], "open_exception",
                         f"{x['vuln_id']}/{x['exception_id']}", "", "", "", "",
                         x["expires_at"]])
    return out.getvalue()


def pdf(report: Report) -> bytes:
    """The HTML rendering as PDF (WeasyPrint).

    Raises:
        UserError: WeasyPrint or its system libraries (pango) are missing.
    """
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: libpango missing
        raise UserError(f"PDF reports need WeasyPrint and pango ({exc}); run "
                        "scripts/install.sh, or choose --format html") from exc
    data: bytes = HTML(string=html(report)).write_pdf()
    return data


def render(report: Report, fmt: str) -> bytes:
    """The report in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        UserError: an unknown format, or PDF rendering unavailable.
    """
    if fmt == "json":
        return canonical(report)
    if fmt == "html":
        return html(report).encode()
    if fmt == "csv":
        return csv_text(report).encode()
    if fmt == "pdf":
        return pdf(report)
    raise UserError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
