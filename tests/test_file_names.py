"""Values used as file names: safe ones kept, others made safe, bounded and still distinct."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from benchharness.file_names import MAX_NAME_CHARS, is_safe_file_name, safe_file_name


def test_a_safe_name_is_kept_as_it_is() -> None:
    for name in ("local", "pixel7-adb", "rpi4_64.lan"):
        assert safe_file_name(name) == name


def test_unsafe_names_become_safe_and_stay_apart() -> None:
    names = ["a/b", "a_b/", "../etc", "-rf", ".hidden", "", "d" * 300, "d" * 299 + "e", "é"]
    made = [safe_file_name(n) for n in names]
    assert all(is_safe_file_name(m) for m in made)
    assert len(set(made)) == len(made)
    assert made[0].startswith("a_b-") and made[6].startswith("d" * 100)


@settings(database=None, derandomize=True)  # the same examples on every run
@given(st.text(max_size=400))
def test_any_text_gives_a_safe_bounded_name(text: str) -> None:
    name = safe_file_name(text)
    assert is_safe_file_name(name) and len(name.encode()) <= MAX_NAME_CHARS
    assert safe_file_name(text) == name  # the same device finds its file again
