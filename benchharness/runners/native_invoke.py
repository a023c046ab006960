"""What every native-tool runner shares: one tool invocation on a device and the rules it runs
under.

``runners/native.py`` (``benchmark_model``, ``onnxruntime_perf_test``) and
``runners/native_pte.py`` (``executor_runner``) both build on this module, so neither needs the
other's internals:

* :func:`invoke` runs a tool's command line in one shell round trip between two runs of the
  environment probe (``ondevice/probe.py``, the one the python runner runs too), for the
  environment columns and THROTTLED;
* :func:`tool_version` is a binary's identity: the tools print no version, so it is the binary's
  sha256 (first 16 hex digits) and its path on the device;
* :func:`rules`, :func:`tool_rule` and :func:`perf_test_runs` map docs/method.md's stopping and
  warm-up rules onto tools that only take a count of inferences.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from benchharness.errors import HarnessError
from benchharness.ondevice import probe, protocol
from benchharness.ondevice.method import DEFAULT, QUICK, WARMUP_DEFAULT, StoppingRule, WarmupRule
from benchharness.ondevice.protocol import Environment
from benchharness.parse.native_result import Tool, ToolOutput
from benchharness.plan.options import Method
from benchharness.runners.python import remote_sha256
from benchharness.transport.base import Transport, quote_argv

if TYPE_CHECKING:
    from benchharness.profiles.device_profile import DeviceProfile


#: Hex digits of the binary's sha256 kept as its version: unique enough, short to read.
VERSION_HASH_CHARS = 16
#: Marker lines around the tool's output in the one shell round trip (the probe's are its own).
TOOL_BEGIN = "@@bh-native:tool"
TOOL_END = "@@bh-native:tool-end"
#: The probe as a shell function, run before and after the tool.
PROBE_FUNCTION = "bh_probe() { " + probe.SCRIPT + "; }; "


class Session(Protocol):
    """What of ``dispatch.session.DeviceSession`` the native runners use."""

    profile: DeviceProfile
    transport: Transport
    local: bool
    workdir: str | None

    def artifact_path(self, artifact: Any) -> str: ...


# ------------------------------------------------------------------------------- rules


def rules(method: Method) -> tuple[StoppingRule, WarmupRule]:
    """docs/method.md's stopping and warm-up rules with the run's overrides, as the python
    runner's."""
    preset = QUICK if method.quick else DEFAULT
    stop = replace(
        preset,
        min_n=preset.min_n if method.min_n is None else method.min_n,
        min_s=preset.min_s if method.min_s is None else method.min_s,
        max_s=preset.max_s if method.max_s is None else method.max_s,
    )
    if method.warmup_min_s is None:
        return stop, WARMUP_DEFAULT
    return stop, replace(WARMUP_DEFAULT, min_s=method.warmup_min_s)


def tool_rule(method: Method) -> protocol.Rule:
    """The rule a tool invocation ran under: docs/method.md's minimums and cap, no adaptive stop."""
    stop, warm = rules(method)
    return protocol.Rule(
        min_n=stop.min_n, min_s=stop.min_s, max_s=stop.max_s, adaptive=False,
        warmup_min_s=warm.min_s,
    )  # fmt: skip


def perf_test_runs(stop: StoppingRule, estimate_ms: float | None) -> int:
    """Inferences to time for a tool that takes a count only (perf_test's ``-r``): at least min_n
    and min_s worth, at most max_s worth."""
    if estimate_ms is None or estimate_ms <= 0:
        return stop.min_n
    want = max(stop.min_n, math.ceil(stop.min_s * 1000.0 / estimate_ms))
    cap = max(1, math.floor(stop.max_s * 1000.0 / estimate_ms))
    return min(want, cap)


# ------------------------------------------------------------------------------- one invocation


@dataclass(frozen=True)
class Invocation:
    """One tool run: its output (stdout and stderr merged in order) and the environment."""

    argv: list[str]
    output: str
    returncode: int
    env_start: Environment | None
    env_end: Environment | None

    def tool_output(self, tool: Tool) -> ToolOutput:
        return ToolOutput(tool, self.output, self.returncode, quote_argv(self.argv))


def _script(argv: Sequence[str]) -> str:
    return (
        f"{PROBE_FUNCTION}bh_probe; echo {TOOL_BEGIN}; {quote_argv(argv)} 2>&1; rc=$?; "
        f"echo; echo {TOOL_END}; bh_probe; exit $rc"
    )


def invoke(
    session: Session, argv: Sequence[str], timeout: float, affinity: str | None = None
) -> Invocation:
    """Run ``argv`` on the device between two environment probes (one round trip)."""
    result = session.transport.run(["sh", "-c", _script(argv)], timeout=timeout)
    lines = result.stdout.splitlines()
    begin = _index(lines, TOOL_BEGIN, last=False)
    end = _index(lines, TOOL_END, last=True)
    if begin is None:
        # the shell itself failed before the tool: report whatever it said
        output = result.stdout
        before: list[str] = []
        after: list[str] = []
    else:
        stop = end if end is not None and end > begin else len(lines)
        before, after = lines[:begin], lines[stop + 1 :]
        body = lines[begin + 1 : stop]
        if body and not body[-1].strip():
            body = body[:-1]  # the newline the script adds in case the tool printed none
        output = "\n".join(body)
    if result.stderr.strip():
        output = f"{output}\n{result.stderr}" if output else result.stderr
    return Invocation(
        argv=list(argv),
        output=output,
        returncode=result.returncode,
        env_start=parse_environment(before, affinity),
        env_end=parse_environment(after, affinity),
    )


def _index(lines: Sequence[str], marker: str, *, last: bool) -> int | None:
    hits = [i for i, line in enumerate(lines) if line.strip() == marker]
    if not hits:
        return None
    return hits[-1] if last else hits[0]


def parse_environment(lines: Sequence[str], affinity: str | None = None) -> Environment | None:
    """One probe's output as the result's environment, for the CPUs ``affinity`` pins."""
    env = probe.environment(probe.parse("\n".join(lines)), probe.mask_cpus(affinity))
    return Environment(**env) if env else None


# ------------------------------------------------------------------------------- versions

#: Per device session: each binary's version, so it is hashed once per session.
_VERSIONS: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def tool_version(session: Session, binary: str) -> str:
    """``sha256:<16 hex> <path>``: the tools print no version, their bytes identify them."""
    versions = _VERSIONS.setdefault(session, {})
    if binary not in versions:
        digest = None
        with contextlib.suppress(HarnessError):
            digest = remote_sha256(session.transport, binary)
        versions[binary] = (
            f"sha256:{digest[:VERSION_HASH_CHARS]} {binary}"
            if digest
            else f"{binary} (no sha256sum on the device)"
        )
    return versions[binary]
