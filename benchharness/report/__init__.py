"""Latency-vs-FLOPs reports: analysis (plain data), plots (PNG), HTML and Markdown writers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.errors import UsageError

if TYPE_CHECKING:
    from benchharness.report.figures import Analysis

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
    from benchharness.report.figures import analyze_runs

    analysis = analyze_runs(results_dir, run_ids)
    from benchharness.report.predicted import prediction_tables

    analysis.predictions = prediction_tables(analysis, results_dir)
    if suffix in HTML_SUFFIXES:
        from benchharness.report.html import write_html

        write_html(analysis, out)
        return ReportResult(out, analysis, [])
    from benchharness.report.markdown import files_dir, write_markdown

    plots = write_markdown(analysis, out)
    return ReportResult(out, analysis, [files_dir(out) / f"{p.slug}.png" for p in plots])


__all__ = ["HTML_SUFFIXES", "MARKDOWN_SUFFIXES", "ReportResult", "write_report"]
