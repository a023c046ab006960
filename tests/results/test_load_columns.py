"""How busy the machine was, as the row builder reads it from each process's probes."""

from __future__ import annotations

from benchharness.ondevice import probe
from benchharness.ondevice.protocol import Environment, RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.results.rows import build_row, load_columns


def _env(load: float, ticks: int, steal: int) -> Environment:
    return Environment(loadavg=load, cpus=2, cpu_ticks=ticks, steal_ticks=steal)


def _process(start: Environment, end: Environment) -> RunnerResult:
    return RunnerResult(
        runtime="onnxruntime", samples_ms=[1.0, 1.1, 1.05], env_start=start, env_end=end
    )


def test_the_row_keeps_the_closing_and_highest_load_and_the_worst_steal() -> None:
    results = [
        _process(_env(0.4, 1000, 10), _env(1.9, 1200, 14)),  # 4 of 200 ticks stolen: 2 %
        _process(_env(1.2, 1200, 14), _env(0.8, 1400, 34)),  # 20 of 200: 10 %
    ]
    cols = load_columns(results)
    assert cols == {"loadavg_end": 0.8, "loadavg_max": 1.9, "steal_pct": 10.0}


def test_no_steal_field_and_no_time_passed_give_no_steal() -> None:
    assert (
        probe.steal_share({"cpu_ticks": 5, "steal_ticks": 1}, {"cpu_ticks": 5, "steal_ticks": 1})
        is None
    )
    assert probe.steal_share({"cpu_ticks": None}, {"cpu_ticks": 9, "steal_ticks": 0}) is None
    assert load_columns([_process(Environment(), Environment())])["steal_pct"] is None


def test_the_probe_reads_steal_from_proc_stat() -> None:
    text = "\n".join(
        [f"{probe.MARK}load", "0.52 0.40 0.33 1/123 4567",
         f"{probe.MARK}stat", "cpu  100 0 50 800 10 0 5 35 0 0", f"{probe.MARK}end"]
    )  # fmt: skip
    parsed = probe.parse(text)
    assert parsed["cpu_ticks"] == 1000 and parsed["steal_ticks"] == 35
    assert parsed["loadavg"] == 0.52


def test_a_row_carries_cpus_load_and_ops_error() -> None:
    artifact = Artifact(model="m", source="zoo", input_shape="1x3x32x32", format="onnx",
                        precision="fp32", path=None, sha256="x")  # fmt: skip
    results = [_process(_env(0.4, 1000, 10), _env(1.9, 1200, 14))]
    row = build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                    artifact=artifact, results=results, processes_wanted=1,
                    ops_error="profiler failed")  # fmt: skip
    assert row.cpus == 2 and row.loadavg_start == 0.4 and row.loadavg_max == 1.9
    assert row.steal_pct == 2.0 and row.ops_error == "profiler failed"


def test_a_process_under_translation_makes_the_row_emulated_and_flagged() -> None:
    artifact = Artifact(model="m", source="zoo", input_shape="1x3x32x32", format="onnx",
                        precision="fp32", path=None, sha256="x")  # fmt: skip
    start = Environment(arch="aarch64", emulated="qemu-user", cpu_model="AMD EPYC")
    results = [_process(start, Environment(arch="aarch64", emulated="qemu-user"))]
    row = build_row(run_id="r", job_id="j", device="board", transport="ssh", affinity="",
                    artifact=artifact, results=results, processes_wanted=1)  # fmt: skip
    assert row.arch == "aarch64" and row.emulated == "qemu-user"
    assert "EMULATED" in row.flag_list and row.flag_list[-1] == "EMULATED"
    native = build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                       artifact=artifact, results=[_process(Environment(arch="x86_64"),
                       Environment())], processes_wanted=1)  # fmt: skip
    assert native.emulated is None and "EMULATED" not in native.flag_list
