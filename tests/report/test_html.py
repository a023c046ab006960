"""The HTML report, rendered in real headless Chromium: no script errors, every plot, sorting."""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchharness.report import write_report
from benchharness.report.plots import all_plots
from tests.report.synthetic import EVIL, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Headless Chromium on a loaded 2-core machine takes a few seconds; leave ample room.
BROWSER_TIMEOUT_S = 120
#: Where the lead looks at the rendered report.
SCREENSHOT_COPY = Path("/tmp/report_screenshot.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Appended to a copy of the report: sorts the first models table by "median ms" (twice, so
#: descending), then writes the model column into the DOM for the dump to show.
SORT_PROBE = """
<script>
(function () {
  var table = document.querySelector("table.models");
  var th = Array.prototype.find.call(table.tHead.rows[0].cells, function (c) {
    return c.textContent === "median ms";
  });
  th.click(); th.click();
  var names = Array.prototype.map.call(table.tBodies[0].rows, function (r) {
    return r.cells[0].textContent;
  });
  var out = document.createElement("pre");
  out.id = "sort-probe";
  out.textContent = names.join("\\n") + "\\n" + th.getAttribute("aria-sort");
  document.body.appendChild(out);
})();
</script>
"""


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    write_run(results, "run-a", "devA", 1, evil=True)
    write_run(results, "run-b", "devB", 2)
    out = tmp_path / "report.html"
    result = write_report(["run-a", "run-b"], results, out)
    assert result.path == out and result.images == []
    return out


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)


def test_self_contained_and_escaped(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing fetched: no external script, style, image or font
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text
    # text from the CSVs is escaped
    assert EVIL not in text
    assert "ev&lt;b&gt;il|&amp;x$1" in text
    for section in ("headline", "plots", "tables", "ops", "devices", "flagged", "method"):
        assert f'id="{section}"' in text
    assert "host-devA" in text and "cpu of devB" in text  # run.json and row environment
    assert "HIGH_IQR" in text and 'class="num flagged"' in text


def test_every_plot_is_inlined(report: Path, tmp_path: Path) -> None:
    from benchharness.report.figures import analyze_runs

    text = report.read_text(encoding="utf-8")
    srcs = re.findall(r'<img class="plot" alt="[^"]*" src="data:image/png;base64,([^"]+)"', text)
    expected = all_plots(analyze_runs(tmp_path / "results", ["run-a", "run-b"]))
    # two series x (MACs, GMAC/s, bytes) + op shares of devA + the cross-device chart
    assert len(srcs) == len(expected) == 8
    for src in srcs:
        assert base64.b64decode(src).startswith(PNG_MAGIC)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(
        report.read_text(encoding="utf-8").replace("</body>", SORT_PROBE + "</body>"),
        encoding="utf-8",
    )
    dumped = chromium(["--dump-dom", probe.as_uri()], tmp_path / "profile1")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert 'data-report-ready="1"' in dom, "the sorting script did not finish"
    assert 'data-js-errors="0"' in dom, re.findall(r'<pre id="js-errors">(.*?)</pre>', dom, re.S)
    assert "Uncaught" not in dumped.stderr, dumped.stderr[-2000:]
    assert len(re.findall(r'<img class="plot"[^>]*src="data:image/png;base64,[^"]{100,}', dom)) == 8
    # sorted descending by median on devA's synthetic numbers; the flagged beta sits mid-table
    sorted_names = re.search(r'<pre id="sort-probe">(.*?)</pre>', dom, re.S)
    assert sorted_names is not None
    names = sorted_names.group(1).split("\n")
    assert names[-1] == "descending"
    assert names[:3] == ["delta", "epsilon", "ev&lt;b&gt;il|&amp;x$1"]
    assert names[-2] == "alpha@w0.5"

    shot = tmp_path / "report.png"
    taken = chromium(
        [f"--screenshot={shot}", "--window-size=1400,3000", "--hide-scrollbars", report.as_uri()],
        tmp_path / "profile2",
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG_MAGIC)
    assert shot.stat().st_size > 50_000  # a blank page is a few kB
    # the copy is a convenience for people; the test's own file is what counts
    with contextlib.suppress(OSError):
        shutil.copyfile(shot, SCREENSHOT_COPY)
