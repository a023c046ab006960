"""The history page: self-contained and escaped, and rendered in real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from benchharness.history.page import write_page
from benchharness.history.timeline import load_history
from tests.history.synthetic import SHA_B, step_levels, write_series

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Headless Chromium on a loaded 2-core machine takes a few seconds; leave ample room.
BROWSER_TIMEOUT_S = 120
#: Where the lead looks at the rendered page.
SCREENSHOT_COPY = Path("/tmp/history_screenshot.png")
#: A model name that would break the page if it were not escaped.
EVIL = 'ev<b>il"&net'
#: At least this many distinct colours in the screenshot: text, axes, dots, bars, lines.
MIN_COLOURS = 8


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium as tests/report/test_html.py runs it: no sandbox, GPU, network or
    first-run work, a private profile."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)


@pytest.fixture()
def page(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    write_series(results, step_levels(16, {8: 1.3}), seed=1,
                 changes={8: {"artifact_sha256": SHA_B}})  # fmt: skip
    write_series(results, step_levels(10, {}, base_ms=2.0), seed=2, start=16, model=EVIL,
                 format="tflite", runtime="litert")  # fmt: skip
    write_series(results, step_levels(5, {}), seed=3, start=26, device="devB")
    return write_page(load_history(results), tmp_path / "history.html")


def test_self_contained_and_escaped(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "<script" not in text and "<img" not in text
    assert EVIL not in text and "ev&lt;b&gt;il&quot;&amp;net" in text
    assert text.count('<section class="device"') == 2  # devA and devB
    assert text.count('<figure class="series"') == 3
    assert text.count('class="change"') == 1  # the one step, marked
    assert "x1.30" in text and "artifact_sha256 a1a1a1a1a1a1 -&gt; b2b2b2b2b2b2" in text
    assert text.count('<circle class="pt') == 16 + 10 + 5


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    dumped = chromium(["--dump-dom", page.as_uri()], tmp_path / "profile1")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    for name in ("net onnx/fp32 onnxruntime t2", 'ev&lt;b&gt;il"&amp;net tflite/fp32 litert t2'):
        assert name in dom, name
    assert "devA" in dom and "devB" in dom

    shot = tmp_path / "history.png"
    taken = chromium(
        ["--screenshot=" + str(shot), "--window-size=1000,1400", "--hide-scrollbars",
         page.as_uri()],
        tmp_path / "profile2",
    )  # fmt: skip
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    shutil.copyfile(shot, SCREENSHOT_COPY)
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1000, 1400)
        colours = rgb.getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) >= MIN_COLOURS  # None: more than 65536
        assert rgb.getextrema() != ((255, 255), (255, 255), (255, 255))  # not blank white
