"""The report as Markdown: tables inline, plots as PNG files in ``<stem>_files/`` beside it.

For ``report.md`` the images go to ``report_files/`` and are linked relatively, so the pair can be
committed to a repository or attached to a pull request as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from benchharness.report import tables as T
from benchharness.report.cells import Table
from benchharness.report.cross_runtime import cross_runtime, family_table, runtime_table
from benchharness.report.drawing import Plot
from benchharness.report.figures import Analysis
from benchharness.report.memory_section import memory_summary, memory_table
from benchharness.report.plots import all_plots
from benchharness.results.store import atomic_write_text

#: Characters that would end or restyle a Markdown table cell; escaped with a backslash.
MD_SPECIAL = "\\|*_`[]<>"


def md_escape(text: str) -> str:
    out = "".join("\\" + c if c in MD_SPECIAL else c for c in text)
    return out.replace("\r", " ").replace("\n", " ")


def table_md(table: Table) -> str:
    lines = [f"**{md_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(md_escape(c) for c in table.columns) + " |")
    lines.append(
        "|"
        + "|".join("---:" if _numeric(table, i) else "---" for i in range(len(table.columns)))
        + "|"
    )
    for row in table.rows:
        cells = []
        for c in row:
            text = md_escape(c.text)
            cells.append(f"**{text}**" if "flagged" in c.css and text else text)
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", f"_{md_escape(table.note)}_"]
    return "\n".join(lines) + "\n"


def _numeric(table: Table, col: int) -> bool:
    cells = [row[col] for row in table.rows if col < len(row)]
    return bool(cells) and all("num" in c.css for c in cells)


def files_dir(out: Path) -> Path:
    return out.with_name(f"{out.stem}_files")


def _section(title: str, body: Sequence[str], empty: str) -> list[str]:
    """One section of the report: its ``body``, or without any the note ``empty``."""
    return [f"## {title}", "", *(body or [f"{empty}\n"])]


def render_markdown(analysis: Analysis, plots: Sequence[Plot], image_dir: str) -> str:
    run_ids = ", ".join(r.run_id for r in analysis.runs)
    parts = [
        f"# Latency vs FLOPs — {md_escape(run_ids)}",
        "",
        *_headline_md(analysis),
        *_plots_md(plots, image_dir),
        *_tables_md(analysis),
        *_comparisons_md(analysis),
        *_flagged_md(analysis),
        "## Method & environment",
        "",
        *(table_md(T.run_table(run)) for run in analysis.runs),
    ]
    return "\n".join(parts)


def _headline_md(analysis: Analysis) -> list[str]:
    """The headline table, the analysis' notes, a pointer to the flags and the failures."""
    parts = ["## Headline", "", table_md(T.headline_table(analysis))]
    parts += [f"> {md_escape(n)}\n" for n in analysis.notes]
    if analysis.flagged:
        parts.append(
            f"> {len(analysis.flagged)} measurement(s) raised flags; they are marked **bold** "
            "in tables and ! in plots (see Flagged measurements).\n"
        )
    if analysis.failed:
        parts.append(table_md(T.failed_table(analysis)))
    return parts


def _plots_md(plots: Sequence[Plot], image_dir: str) -> list[str]:
    parts = ["## Plots", ""]
    for p in plots:
        parts += [
            f"![{md_escape(p.alt)}]({image_dir}/{p.slug}.png)",
            "",
            f"_{md_escape(p.title)}_",
            "",
        ]
    return parts


def _tables_md(analysis: Analysis) -> list[str]:
    """Per series its models, GMAC/s and variants; then predicted against measured, if any."""
    parts = ["## Tables", ""]
    for s in analysis.series:
        parts.append(table_md(T.model_table(s)))
        parts.append(table_md(T.gmacs_table(s)))
        variants = T.variants_table(s)
        if variants is not None:
            parts.append(table_md(variants))
    if analysis.predictions:
        parts += ["## Predicted vs measured", ""]
        parts += [table_md(t) for t in analysis.predictions]
    return parts


def _comparisons_md(analysis: Analysis) -> list[str]:
    """Operator types, across devices, memory and across runtimes, each with a note when empty."""
    memory = analysis.memory
    summary = [f"- {md_escape(line)}" for line in memory_summary(memory)] if memory else []
    runtimes = cross_runtime(analysis.series)
    return [
        *_section(
            "Operator types",
            [table_md(T.op_table(b)) for b in analysis.op_breakdowns],
            "No per-operator rows in these runs (ops.csv is empty).",
        ),
        *_section(
            "Across devices",
            [table_md(T.cross_table(c)) for c in analysis.cross_device],
            "One device (or no models in common): no cross-device comparison.",
        ),
        *_section(
            "Memory",
            [*summary, "", table_md(memory_table(memory))] if memory else [],
            "No measured memory in these runs.",
        ),
        *_section(
            "Across runtimes",
            [table_md(t(view)) for view in runtimes for t in (runtime_table, family_table)],
            "One runtime per device (or no models in common): nothing side by side.",
        ),
    ]


def _flagged_md(analysis: Analysis) -> list[str]:
    advice = [f"- **{flag}**: {md_escape(text)}" for flag, text in T.flag_advice(analysis)]
    return _section(
        "Flagged measurements",
        [table_md(T.flagged_table(analysis)), *advice, ""] if analysis.flagged else [],
        "No measurement raised a flag.",
    )


def write_markdown(analysis: Analysis, out: Path) -> list[Plot]:
    plots = all_plots(analysis)
    folder = files_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    for p in plots:
        (folder / f"{p.slug}.png").write_bytes(p.png)
    atomic_write_text(out, render_markdown(analysis, plots, quote(folder.name)))
    return plots
