"""The memory columns of runs.csv: built from the processes, kept on resume, and a results
folder of schema 1 (written here by hand, as a harness of that version wrote it) still loads."""

from __future__ import annotations

import csv
from pathlib import Path

from benchharness.dispatch.resume import restore
from benchharness.dispatch.state import JobState
from benchharness.ondevice import protocol
from benchharness.ondevice.protocol import Memory, RunnerResult
from benchharness.plan.artifacts import Artifact
from benchharness.results.memory_columns import MEMORY_COLUMNS, memory_from_row
from benchharness.results.rows import build_row
from benchharness.results.schema import RunRow, SampleRow
from benchharness.results.store import RUNS_COLUMNS, SCHEMA_VERSION, RunStore

#: runs.csv's header at schema_version 1, as that harness wrote it.
V1_RUNS_HEADER = (
    "schema_version,run_id,job_id,device,transport,runtime,runtime_version,provider,format,"
    "precision,model,source,input_shape,threads,affinity,status,error,n,warmup_n,processes,"
    "load_ms,cold_ms,median_ms,mean_ms,std_ms,min_ms,max_ms,p10_ms,p90_ms,p99_ms,iqr_ms,mad_ms,"
    "cv,ci99_low_ms,ci99_high_ms,process_medians_ms,flags,macs,flops,params,model_bytes,"
    "activation_bytes,gmacs_per_s,max_abs_err,tolerance,ops_sum_ratio,artifact_sha256,artifact,"
    "cpu_model,governor,max_freq_mhz,temp_start_c,temp_end_c,loadavg_start,harness_version,"
    "started_at,finished_at,wall_s,cooldown_s,cooldown_temp_c,stats_source"
)


def _v1_row(job: str, model: str, status: str, median: str, model_bytes: str, act: str) -> str:
    cells = dict.fromkeys(V1_RUNS_HEADER.split(","), "")
    cells.update(schema_version="1", run_id="old", job_id=job, device="local", format="onnx",
                 precision="fp32", model=model, status=status, median_ms=median,
                 model_bytes=model_bytes, activation_bytes=act, process_medians_ms="1.5;1.6")  # fmt: skip
    return ",".join(cells.values())


def _write_v1_folder(root: Path) -> Path:
    folder = root / "old"
    folder.mkdir(parents=True)
    rows = [
        _v1_row("j1", "resnet18", "ok", "12.5", "46800000", "3211264"),
        _v1_row("j2", "broken", "failed", "", "", ""),
    ]
    (folder / "runs.csv").write_text(V1_RUNS_HEADER + "\n" + "\n".join(rows) + "\n")
    (folder / "samples.csv").write_text(
        "schema_version,run_id,job_id,device,model,format,precision,process,index,latency_ms\n"
        "1,old,j1,local,resnet18,onnx,fp32,0,0,12.5\n"
    )
    (folder / "ops.csv").write_text(
        "schema_version,run_id,job_id,device,model,format,precision,runtime,op_index,op_name,"
        "op_type,calls,median_us,share,macs,flops,params,bytes,graph_ops\n"
        "1,old,j1,local,resnet18,onnx,fp32,onnxruntime,0,conv,Conv,1,100.0,0.5,10,0,9,99,\n"
    )
    (folder / "run.json").write_text('{"run_id": "old"}')
    return folder


def test_a_schema_1_folder_loads_with_its_estimate_and_no_measurement(tmp_path: Path) -> None:
    _write_v1_folder(tmp_path)
    store = RunStore.open(tmp_path, "old")
    ok, failed = store.runs
    assert ok.schema_version == SCHEMA_VERSION == 2
    assert ok.median_ms == 12.5 and ok.process_medians_ms == [1.5, 1.6]
    assert ok.mem_estimate_bytes == 46800000 + 3211264
    assert ok.mem_peak_bytes is None and ok.mem_source is None
    assert failed.mem_estimate_bytes is None and failed.status == "failed"
    assert store.samples[0].schema_version == 2 and store.samples[0].latency_ms == 12.5
    assert store.ops[0].schema_version == 2 and store.ops[0].op_type == "Conv"

    # a resumed run writes the folder again: every row at the new schema, the old ones intact
    store.add_job(RunRow(job_id="j3", model="new", status="ok", median_ms=1.0,
                         mem_source="vmhwm", mem_peak_bytes=4096))  # fmt: skip
    with (store.path / "runs.csv").open() as fh:
        written = list(csv.DictReader(fh))
    assert tuple(written[0]) == RUNS_COLUMNS
    assert [r["schema_version"] for r in written] == ["2", "2", "2"]
    assert written[0]["mem_estimate_bytes"] == str(46800000 + 3211264)
    again = RunStore.open(tmp_path, "old")
    assert [r.mem_peak_bytes for r in again.runs] == [None, None, 4096]


def _artifact() -> Artifact:
    return Artifact(model="m", source="zoo", input_shape="1x3x32x32", format="tflite",
                    precision="fp32", path=None, sha256="ab",
                    cost={"model_bytes": 1000, "activation_bytes": 300})  # fmt: skip


def _result(peak: int, init: int, source: str = protocol.MEM_VMHWM) -> RunnerResult:
    return RunnerResult(
        samples_ms=[1.0, 1.1, 1.2],
        memory=Memory(source=source, peak_bytes=peak, init_bytes=init, baseline_bytes=10_000,
                      runtime_load_bytes=500, tensor_bytes=64),
    )  # fmt: skip


def _row(results: list[RunnerResult]) -> RunRow:
    return build_row(run_id="r", job_id="j", device="local", transport="local", affinity="",
                     artifact=_artifact(), results=results, processes_wanted=len(results))  # fmt: skip


def _memory(row: RunRow) -> dict[str, object]:
    """The row's memory columns (``MEMORY_COLUMNS``), by name."""
    values = row.as_dict()
    return {c: values[c] for c in MEMORY_COLUMNS}


def test_row_keeps_the_largest_figures_and_the_weakest_source() -> None:
    row = _row([_result(2000, 900), _result(2600, 800), _result(2300, 950)])
    assert row.mem_peak_bytes == 2600 and row.mem_init_bytes == 950
    assert row.mem_source == "vmhwm" and row.mem_estimate_bytes == 1300
    assert (row.mem_baseline_bytes, row.mem_runtime_load_bytes) == (10_000, 500)
    assert row.mem_tensor_bytes == 64
    mixed = _row([_result(2000, 900), _result(2100, 900, protocol.MEM_RSS_DELTA)])
    assert mixed.mem_source == "rss-delta"  # one process could not reset its peak


def test_row_without_measured_memory_keeps_the_estimate() -> None:
    row = _row([RunnerResult(samples_ms=[1.0])])
    assert row.mem_estimate_bytes == 1300
    assert all(v is None for c, v in _memory(row).items() if c != "mem_estimate_bytes")


def test_resume_carries_the_rows_memory(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r")
    row = _row([_result(2600, 900)])
    store.add_job(
        row, sample_rows=[SampleRow(process=0, index=i, latency_ms=1.0) for i in range(3)]
    )
    state = JobState(artifact=_artifact(), job_id="j")
    restore(RunStore.open(tmp_path, "r"), state)
    assert state.results[0].memory == memory_from_row(store.runs[0])
    again = _row(state.results)
    assert _memory(again) == _memory(row)


def test_bench_import_rows_carry_the_tools_memory(tmp_path: Path) -> None:
    """The same path as dispatch: a captured log's memory lines land in the row."""
    from benchharness.results.importer import import_log
    from tests.runners.fixtures import FIXTURES

    bm = import_log("benchmark-model", FIXTURES / "benchmark_model/tflite_benchmark_model_2.txt",
                    device="mi11", model="yolo", results_dir=tmp_path, run_id="bm")  # fmt: skip
    pt = import_log("ort-perf-test", FIXTURES / "onnxruntime_perf_test/onnxruntime_perf_test_3.txt",
                    device="k1", model="m", results_dir=tmp_path, run_id="pt")  # fmt: skip
    (b,) = RunStore.open(tmp_path, bm.run_id).runs
    (p,) = RunStore.open(tmp_path, pt.run_id).runs
    # "Peak memory footprint (MB): init=4.92969 overall=138.809"
    assert (b.mem_source, b.mem_init_bytes) == ("benchmark_model", round(4.92969 * 2**20))
    assert b.mem_peak_bytes == round(138.809 * 2**20)
    assert (p.mem_source, p.mem_peak_bytes) == ("onnxruntime_perf_test", 91336704)
