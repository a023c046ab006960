"""Latency-vs-FLOPs reports: analysis (plain data), plots (PNG), HTML and Markdown writers.

The modules, lowest first (each imports only those above it): ``cells`` (table cells and number
formatting), ``fits``, ``loading`` (the runs' rows), ``memory_section``, ``figures`` (the
analysis), ``tables``, ``cross_runtime``, ``predicted``, ``drawing`` (what every figure shares),
``memory_plot``, ``plots``, and the writers ``html`` and ``markdown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchharness.errors import UsageError
from benchharness.report.figures import Analysis, analyze_runs
from benchharness.report.html import write_html
from benchharness.report.markdown import files_dir, write_markdown
from benchharness.report.predicted import prediction_section

#: Output suffixes and the writer each one picks.
HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass
class ReportResult:
    path: Path
    analysis: Analysis
    images: list[Path]  # PNG files written beside a Markdown report; empty for HTML


def write_report(run_ids: Sequence[str], results_dir: Path, out: Path) -> ReportResult:
    """Analyse the runs and write an HTML (one self-contained file) or Markdown report."""
    suffix = out.suffix.lower()
    if suffix not in HTML_SUFFIXES + MARKDOWN_SUFFIXES:
        raise UsageError(f"-o {out}: the report is written as .html or .md; pick one of those")
    analysis = analyze_runs(results_dir, run_ids)
    analysis.predictions, notes = prediction_section(analysis, results_dir)
    analysis.notes.extend(notes)
    if suffix in HTML_SUFFIXES:
        write_html(analysis, out)
        return ReportResult(out, analysis, [])
    plots = write_markdown(analysis, out)
    return ReportResult(out, analysis, [files_dir(out) / f"{p.slug}.png" for p in plots])


__all__ = ["HTML_SUFFIXES", "MARKDOWN_SUFFIXES", "ReportResult", "write_report"]
