"""The report as ONE self-contained HTML file: plots inlined as base64 PNG, CSS and JS inline.

Nothing is fetched from the network, so the file can be mailed, archived in CI artifacts or opened
offline. Every piece of text from the results goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from pathlib import Path

from benchharness import __version__
from benchharness.report import tables as T
from benchharness.report.cells import Cell, Table
from benchharness.report.cross_runtime import cross_runtime, family_table, runtime_table
from benchharness.report.drawing import Plot
from benchharness.report.figures import Analysis
from benchharness.report.memory_section import memory_summary, memory_table
from benchharness.report.plots import all_plots
from benchharness.results.store import atomic_write_text

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1300px; padding: 0 24px 60px; color: #1d1d1f; }
h1 { margin-top: 28px; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 40px; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f3f3f5; text-align: left; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.flagged { color: #b00020; font-weight: 600; }
td.slower { color: #b00020; } td.faster { color: #1b7f3b; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
p.note { color: #555; margin: -14px 0 18px; font-size: 12px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
         gap: 0 18px; }
.plots figure.wide { grid-column: 1 / -1; }
figure { margin: 14px 0 26px; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12px; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 6px 12px; }
#js-errors { color: #b00020; }
td.value { max-width: 800px; word-break: break-word; font-family: ui-monospace, monospace;
           font-size: 12px; }
"""

#: Records script errors into the page itself, so a headless browser's DOM dump shows them.
ERROR_TRAP_JS = """
window.__reportErrors = [];
function __showReportErrors() {
  var pre = document.getElementById("js-errors");
  if (pre) { pre.textContent = window.__reportErrors.join("\\n"); }
  document.documentElement.setAttribute("data-js-errors", String(window.__reportErrors.length));
}
window.addEventListener("error", function (e) {
  window.__reportErrors.push(String(e.message || e));
  __showReportErrors();
});
__showReportErrors();
document.addEventListener("DOMContentLoaded", __showReportErrors);
"""

#: Click a header to sort by it; numbers by their data-sort key, empty cells always last.
SORT_JS = """
(function () {
  function key(cell) {
    var v = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    v = v.trim();
    if (v === "" || v === "\\u2013") { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) { return (x === null) - (y === null); }
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
  });
  window.reportSortBy = sortBy;
  document.documentElement.setAttribute("data-report-ready", "1");
})();
"""


def _cell_html(cell: Cell) -> str:
    attrs = f' class="{escape(cell.css)}"' if cell.css else ""
    if cell.sort is not None:
        attrs += f' data-sort="{escape(str(cell.sort))}"'
    return f"<td{attrs}>{escape(cell.text)}</td>"


def table_html(table: Table, *, sortable: bool = True, css: str = "") -> str:
    classes = " ".join(c for c in ("sortable" if sortable else "", css) if c)
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in table.columns)
    body = "\n".join("<tr>" + "".join(_cell_html(c) for c in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f'<table class="{classes}"><caption>{escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>{note}"
    )


#: Plots drawn wide (a bar group per model) that need a row of their own in the grid.
WIDE_SLUG_PREFIXES = ("ops-",)


def _wide(plot: Plot) -> str:
    return ' class="wide"' if plot.slug.startswith(WIDE_SLUG_PREFIXES) else ""


def img_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="fig-{escape(plot.slug)}"{_wide(plot)}><img class="plot" '
        f'alt="{escape(plot.alt)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(plot.title)}</figcaption></figure>'
    )


def _section(
    anchor: str, title: str, body: Sequence[str], empty: str, intro: str = ""
) -> list[str]:
    """One section of the report: ``intro`` and ``body`` (its tables), or without any body the
    note ``empty``."""
    content = [*([f"<p>{intro}</p>"] if intro else []), *body] if body else [f"<p>{empty}</p>"]
    return [f'<section id="{anchor}"><h2>{title}</h2>', *content, "</section>"]


#: The sections of the report as the navigation bar lists them: (anchor, title).
NAV = (
    ("headline", "Headline"),
    ("plots", "Plots"),
    ("tables", "Tables"),
    ("ops", "Operator types"),
    ("devices", "Devices"),
    ("memory", "Memory"),
    ("runtimes", "Runtimes"),
    ("flagged", "Flagged"),
    ("method", "Method &amp; environment"),
)


def render_html(analysis: Analysis, plots: Sequence[Plot], title: str = "") -> str:
    run_ids = ", ".join(r.run_id for r in analysis.runs)
    title = title or f"Latency vs FLOPs — {run_ids}"
    parts = [
        *_head(title),
        *_headline_section(analysis),
        *_plots_section(plots),
        *_tables_section(analysis),
        *_predicted_section(analysis),
        *_ops_section(analysis),
        *_devices_section(analysis),
        *_memory_section(analysis),
        *_runtimes_section(analysis),
        *_flagged_section(analysis),
        *_method_section(analysis),
        '<pre id="js-errors"></pre>',
        f"<script>{SORT_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _head(title: str) -> list[str]:
    """The document up to the navigation bar: title, inline CSS and the error trap."""
    nav = "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in NAV)
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        f"<script>{ERROR_TRAP_JS}</script>",
        "</head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<nav>{nav}</nav>",
    ]


def _headline_section(analysis: Analysis) -> list[str]:
    """The headline table, the analysis' notes, a pointer to the flags and the failures."""
    parts = [
        '<section id="headline"><h2>Headline</h2>',
        "<p>Rank correlations of median latency with MACs (and with memory traffic) per device "
        "and runtime: 1 means the cheaper model is always the faster one. 'vs fit' compares a "
        "model's latency with what the log-log fit of its series predicts from its MACs.</p>",
        table_html(T.headline_table(analysis)),
    ]
    parts += [f'<p class="warn">{escape(note)}</p>' for note in analysis.notes]
    if analysis.flagged:
        parts.append(
            f'<p class="warn">{len(analysis.flagged)} measurement(s) raised flags and are '
            'marked <b>!</b> in plots and red in tables; see <a href="#flagged">Flagged</a>.</p>'
        )
    if analysis.failed:
        parts.append(table_html(T.failed_table(analysis)))
    parts.append("</section>")
    return parts


def _plots_section(plots: Sequence[Plot]) -> list[str]:
    parts = [
        '<section id="plots"><h2>Plots</h2>',
        # side by side on a wide screen: one device's MACs, GMAC/s and bytes plots read as a row
        '<div class="plots">' + "".join(img_html(p) for p in plots) + "</div>",
    ]
    if not plots:
        parts.append("<p>No plot: no measurement has MACs or bytes.</p>")
    parts.append("</section>")
    return parts


def _tables_section(analysis: Analysis) -> list[str]:
    """Per series: its models, their achieved GMAC/s and the variants of each family."""
    parts = ['<section id="tables"><h2>Tables</h2><p>Click a column header to sort.</p>']
    for s in analysis.series:
        parts.append(table_html(T.model_table(s), css="models"))
        parts.append(table_html(T.gmacs_table(s)))
        variants = T.variants_table(s)
        if variants is not None:
            parts.append(table_html(variants))
    parts.append("</section>")
    return parts


def _predicted_section(analysis: Analysis) -> list[str]:
    """Predicted against measured; no section at all where no device has a predictor."""
    if not analysis.predictions:
        return []
    return [
        '<section id="predicted"><h2>Predicted vs measured</h2>',
        "<p>The device's latency predictor (<code>bench predictor build</code>) on each "
        "model, next to the MACs line of its series.</p>",
        *(table_html(t) for t in analysis.predictions),
        "</section>",
    ]


def _ops_section(analysis: Analysis) -> list[str]:
    return _section(
        "ops",
        "Operator types",
        [table_html(T.op_table(b)) for b in analysis.op_breakdowns],
        "No per-operator rows in these runs (ops.csv is empty).",
        intro="Per operator type: its share of the model's time against its share of MACs and of "
        "bytes. 'time / MACs share' above 1: the type costs more time than its MACs.",
    )


def _devices_section(analysis: Analysis) -> list[str]:
    return _section(
        "devices",
        "Across devices",
        [table_html(T.cross_table(c)) for c in analysis.cross_device],
        "One device (or no models in common): no cross-device comparison.",
    )


def _memory_section(analysis: Analysis) -> list[str]:
    memory = analysis.memory
    return _section(
        "memory",
        "Memory",
        [*(f"<p>{escape(line)}</p>" for line in memory_summary(memory)),
         table_html(memory_table(memory))] if memory else [],
        "No measured memory in these runs (rows before schema 2, or tools that print none).",
        intro="Measured peak resident memory of the processes that timed each model, against "
        "the static estimate (weights + peak live activations) and the device's budget. Above 1: "
        "the runtime holds more than the estimate (arena, packed weights, its own buffers); "
        "below: it reuses memory in place.",
    )  # fmt: skip


def _runtimes_section(analysis: Analysis) -> list[str]:
    return _section(
        "runtimes",
        "Across runtimes",
        [
            table_html(t(view))
            for view in cross_runtime(analysis.series)
            for t in (runtime_table, family_table)
        ],
        "One runtime per device (or no models in common): nothing side by side.",
    )


def _flagged_section(analysis: Analysis) -> list[str]:
    advice = "".join(
        f"<dt><b>{escape(flag)}</b></dt><dd>{escape(text)}</dd>"
        for flag, text in T.flag_advice(analysis)
    )
    return _section(
        "flagged",
        "Flagged measurements",
        [table_html(T.flagged_table(analysis)), f"<dl>{advice}</dl>"] if analysis.flagged else [],
        "No measurement raised a flag.",
    )


def _method_section(analysis: Analysis) -> list[str]:
    """Each run's method and environment (values in a monospace cell that wraps), unsortable."""
    parts = ['<section id="method"><h2>Method &amp; environment</h2>']
    for run in analysis.runs:
        table = T.run_table(run)
        table.rows = [
            [c if i < 2 else Cell(c.text, None, "value") for i, c in enumerate(row)]
            for row in table.rows
        ]
        parts.append(table_html(table, sortable=False))
    parts.append(
        f'<p class="note">Written by benchharness {escape(__version__)}. '
        "MACs follow the paper convention (multiply-accumulates of convolutions and matrix "
        "products); element-wise work and bytes are separate columns.</p>"
    )
    parts.append("</section>")
    return parts


def write_html(analysis: Analysis, out: Path) -> list[Plot]:
    plots = all_plots(analysis)
    atomic_write_text(out, render_html(analysis, plots))
    return plots
