"""Device profiles: every shipped one loads; mistakes name file, field and expectation; user
directories shadow shipped names; a path works wherever a name does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchharness.errors import DeviceProfileError
from benchharness.profiles.device_profile import (
    BUILTIN_DIR,
    PROFILE_PATH_ENV,
    available_profiles,
    load_profile,
)

SHIPPED = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def test_the_example_profiles_are_shipped() -> None:
    assert {"local", "pixel4", "rpi4", "gpu-host"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.description


def test_pixel4_profile() -> None:
    p = load_profile("pixel4")
    assert p.transport == "adb" and p.serial
    assert p.runtimes == {
        "benchmark_model": "/data/local/tmp/benchmark_model",
        "onnxruntime_perf_test": "/data/local/tmp/onnxruntime_perf_test",
    }
    assert (p.affinity, p.threads, p.workdir) == ("f0", 4, "/data/local/tmp/benchharness")
    assert (p.cooldown_min_s, p.cooldown_max_s) == (60, 300)
    assert p.fixed_performance is True


def test_ssh_profiles() -> None:
    rpi = load_profile("rpi4")
    assert (rpi.transport, rpi.affinity, rpi.threads) == ("ssh", "f", 4)
    assert rpi.runtimes["python"] == "/usr/bin/python3"
    assert rpi.known_hosts == str(Path("~/.ssh/known_hosts").expanduser())
    gpu = load_profile("gpu-host")
    assert gpu.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert gpu.runtimes["python"]


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ('transport = "usb"', "transport", "one of local, ssh, adb"),
        ('transport = "ssh"\nhost = "h"\nport = 70000', "port", "an integer port 1-65535"),
        ('transport = "ssh"\nhost = "h"\nport = "22"', "port", "an integer port 1-65535"),
        ('transport = "local"\nthreads = 0', "threads", "a positive integer"),
        ('transport = "local"\naffinity = "zz"', "affinity", "a hexadecimal taskset mask"),
        ('transport = "adb"\nserial = "x"\nworkdir = "rel"', "workdir", "an absolute path"),
        ('transport = "local"\nfixed_performance = "yes"', "fixed_performance", "true or false"),
        ('transport = "local"\nproviders = [1]', "providers", "a list of ONNX Runtime"),
        ('transport = "local"\n[cooldown]\nmin_s = -1', "cooldown.min_s", "a non-negative"),
        ('transport = "local"\n[runtimes]\njava = "/x"', "runtimes.java", "one of python"),
        (
            'transport = "local"\n[constraints]\nmax_total_bytes = 0',
            "constraints.max_total_bytes",
            "a positive integer",
        ),
        ('transport = "ssh"', "host", "the SSH host"),
        ('transport = "adb"', "serial", "an adb serial"),
        ("name = 'x'", "transport", "one of local, ssh, adb"),
    ],
)
def test_malformed_profiles_name_file_field_and_expectation(
    tmp_path: Path, body: str, field: str, expected: str
) -> None:
    path = write(tmp_path, "bad", body)
    with pytest.raises(DeviceProfileError) as err:
        load_profile(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: field '{field}'"), message
    assert expected in message


def test_unknown_field_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(DeviceProfileError, match="unknown field 'treads'"):
        load_profile(str(write(tmp_path, "typo", 'transport = "local"\ntreads = 4')))
    with pytest.raises(DeviceProfileError, match=r"unknown field 'constraints\.max_ram'"):
        load_profile(
            str(write(tmp_path, "typo2", 'transport = "local"\n[constraints]\nmax_ram = 1'))
        )
    with pytest.raises(DeviceProfileError, match="not valid TOML"):
        load_profile(str(write(tmp_path, "broken", "transport = ")))


def test_user_directory_shadows_shipped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    write(mine, "pixel4", 'transport = "adb"\nserial = "MY-PHONE"\ndescription = "mine"')
    write(mine, "board", 'transport = "local"')
    monkeypatch.setenv(PROFILE_PATH_ENV, str(mine))
    assert load_profile("pixel4").serial == "MY-PHONE"
    assert available_profiles()["pixel4"] == mine / "pixel4.toml"
    assert load_profile("board").transport == "local"
    assert load_profile("rpi4").path == BUILTIN_DIR / "rpi4.toml"  # others still shipped ones


def test_device_given_as_path(tmp_path: Path) -> None:
    path = write(tmp_path / "d", "lab-board", 'transport = "ssh"\nhost = "10.0.0.7"\n'
                 'key_file = "keys/id"\n')  # fmt: skip
    profile = load_profile(str(path))
    assert (profile.name, profile.host) == ("lab-board", "10.0.0.7")
    assert profile.key_file == str(path.parent / "keys" / "id")  # relative to the profile


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(DeviceProfileError, match=r"no device profile named 'nope'.*pixel4"):
        load_profile("nope")
    with pytest.raises(DeviceProfileError, match="does not exist"):
        load_profile("missing/dir/x.toml")


# ---------------------------------------------------------------- hostile files


def test_a_binary_file_given_as_a_profile_names_the_file() -> None:
    """`bench devices check /bin/ls` was a UnicodeDecodeError."""
    with pytest.raises(DeviceProfileError, match=r"^/bin/ls: not a device profile: .*UTF-8"):
        load_profile("/bin/ls")


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b'transport = "local"\n\xff\xfe\n', "UTF-8"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nest"),  # tomllib: a RecursionError
        (b"notes = " + b"[" * 40 + b"]" * 40, "nest"),  # valid TOML, nested past the bound
        (b"a = " + b"9" * 5000, "TOML"),  # tomllib: int()'s ValueError on 5000 digits
        (b'transport = "local"\n\0', "TOML"),
    ],
)
def test_undecodable_or_non_toml_files_name_the_file(
    tmp_path: Path, data: bytes, what: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(data)
    with pytest.raises(DeviceProfileError, match=rf"^{path}: .*{what}"):
        load_profile(str(path))


def test_a_file_larger_than_any_profile_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchharness.profiles import device_profile as schema

    path = write(tmp_path, "big", 'transport = "local"\n' + "# padding\n" * 100)
    monkeypatch.setattr(schema, "MAX_PROFILE_BYTES", 100)
    with pytest.raises(DeviceProfileError, match=rf"^{path}: .*more than 100 bytes"):
        load_profile(str(path))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[cooldown]\nmin_s = nan", "cooldown.min_s"),
        ("[cooldown]\nmin_s = inf", "cooldown.min_s"),
        ("[cooldown]\nmax_s = 1e999", "cooldown.max_s"),
        ("[cooldown]\nmin_s = 1e9", "cooldown.min_s"),
        ("threads = 100000000000", "threads"),
        ("[constraints]\nmax_model_bytes = 99999999999999999999999", "constraints.max_model_bytes"),
    ],
)
def test_numbers_out_of_range_name_the_field(tmp_path: Path, body: str, field: str) -> None:
    path = write(tmp_path, "bad", 'transport = "local"\n' + body)
    with pytest.raises(DeviceProfileError, match=rf"^{path}: field '{re.escape(field)}'"):
        load_profile(str(path))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('transport = "ssh"\nhost = "\\u0000"', "host"),  # found by the fuzz tests
        ('transport = "local"\nkey_file = "~a\\u0000b"', "key_file"),  # expanduser: ValueError
        ('transport = "local"\ndescription = "\\u001b[2J"', "description"),  # clears a terminal
        ('transport = "local"\nuser = "' + "u" * 5000 + '"', "user"),
    ],
)
def test_text_with_control_characters_or_past_its_bound_names_the_field(
    tmp_path: Path, body: str, field: str
) -> None:
    path = write(tmp_path, "bad", body)
    with pytest.raises(DeviceProfileError, match=rf"^{path}: field '{field}': .*control") as err:
        load_profile(str(path))
    assert len(str(err.value)) < len(str(path)) + 300  # the value is quoted, not all of it
