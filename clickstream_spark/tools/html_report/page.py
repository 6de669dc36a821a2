"""The report as one self-contained HTML page and one PNG per chart.

The page inlines Vega, Vega-Lite and Vega-Embed (vl-convert's bundle) and every chart's data, so
it opens from disk with no network; vl-convert renders the PNGs without a browser.
"""

from __future__ import annotations

import html
import json
import os
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

from clickstream_spark.tools.html_report.build import Report

# The Vega-Lite version Altair writes its specifications for (major.minor), which vl-convert
# must bundle and render with.
VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
PNG_SCALE = 2
HTML_NAME = "report.html"
_CLOSING_SCRIPT = re.compile(r"</(script)", re.IGNORECASE)

_STYLE = """
body { font-family: sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.3rem; }
p.source { color: #555; margin: 0.1rem 0; font-size: 0.9rem; }
div.summary { display: flex; gap: 3rem; }
table.summary { border-collapse: collapse; margin: 1rem 0; }
table.summary caption { text-align: left; font-weight: bold; }
table.summary th, table.summary td { padding: 0.2rem 0.8rem; text-align: left; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
section { margin: 2rem 0; }
p.note { color: #555; font-size: 0.9rem; max-width: 900px; }
p.skipped { color: #8a5a00; }
"""

# Renders every chart as SVG; the body's data-rendered says when all are drawn (or that one
# failed), for people's browsers and tests alike.
_EMBED = """
(function () {
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const drawn = report.charts.map((chart) =>
    vegaEmbed("#chart-" + chart.name, chart.spec, {renderer: "svg", actions: false}));
  Promise.all(drawn).then(
    () => { document.body.dataset.rendered = String(drawn.length); },
    (error) => { document.body.dataset.rendered = "failed"; console.error(error); });
})();
"""

_WINDOW_ROWS = (
    ("clicks", "clicks"),
    ("documents", "documents (URL x country)"),
    ("urls", "URLs"),
    ("countries", "countries"),
)
_INGEST_ROWS = (
    ("batches", "micro-batches"),
    ("messages_read", "messages read"),
    ("valid", "valid"),
    ("quarantined", "quarantined"),
)


def vega_bundle(cache_dir: Path | None = None) -> str:
    """Vega, Vega-Lite and Vega-Embed as one script that sets them on ``window``; kept in
    ``cache_dir`` when given (bundling takes seconds, the result only changes with versions)."""
    if cache_dir is None:
        return vlc.javascript_bundle(vl_version=VL_VERSION)
    cached = cache_dir / f"vega-bundle-{version('vl-convert-python')}-vl{VL_VERSION}.js"
    if cached.exists():
        return cached.read_text(encoding="utf-8")
    bundle = vlc.javascript_bundle(vl_version=VL_VERSION)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(bundle, encoding="utf-8")
    partial.replace(cached)  # atomic: a concurrent run reads a whole bundle or none
    return bundle


def _script_text(text: str) -> str:
    """``text`` safe inside a <script> element: nothing in it can close the element (in JS
    strings and regular expressions ``<\\/`` is ``</``)."""
    return _CLOSING_SCRIPT.sub(r"<\\/\1", text)


def _json_script(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def _table(report: Report, caption: str, rows: tuple[tuple[str, str], ...]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{report.summary[key]:,}</td></tr>"
        for key, label in rows
    )
    return f'<table class="summary"><caption>{html.escape(caption)}</caption>{cells}</table>'


def _summary_tables(report: Report) -> str:
    window = _table(report, "the window", _WINDOW_ROWS)
    ingest = _table(report, f"ingested on {report.summary['ingest_day']} (UTC)", _INGEST_ROWS)
    return f'<div class="summary" id="summary">{window}{ingest}</div>'


def render_html(report: Report, bundle: str) -> str:
    """The page: title, sources, headline numbers, one section per chart, skipped charts."""
    sections = [
        f'<section id="section-{c.name}" aria-label="{html.escape(c.title)}">'
        f'<div class="chart" id="chart-{c.name}"></div>'
        f'<p class="note">{html.escape(c.note)} <a href="{c.name}.png">PNG</a></p></section>'
        for c in report.charts
    ]
    sections += [
        f'<section class="skipped"><h2>{html.escape(title)}</h2>'
        f'<p class="skipped">Not shown: {html.escape(why)}.</p></section>'
        for title, why in report.skipped
    ]
    data = {
        "summary": report.summary,
        "charts": [{"name": c.name, "title": c.title, "spec": c.spec} for c in report.charts],
    }
    sources = "".join(f'<p class="source">{html.escape(line)}</p>' for line in report.lines)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(report.title)}</title>
<style>{_STYLE}</style>
<script>{_script_text(bundle)}</script>
</head>
<body>
<h1>{html.escape(report.title)}</h1>
{sources}
{_summary_tables(report)}
{"".join(sections)}
<script type="application/json" id="report-data">{_json_script(data)}</script>
<script>{_EMBED}</script>
</body>
</html>
"""


def write_report(report: Report, out_dir: Path, bundle: str) -> list[Path]:
    """Write ``out_dir/report.html`` and ``out_dir/<chart>.png``; the files written, page first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / HTML_NAME
    page.write_text(render_html(report, bundle), encoding="utf-8")
    written = [page]
    for chart in report.charts:
        png = out_dir / f"{chart.name}.png"
        png.write_bytes(vlc.vegalite_to_png(chart.spec, vl_version=VL_VERSION, scale=PNG_SCALE))
        written.append(png)
    return written
