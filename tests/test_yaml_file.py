"""``data.yaml_file``: the device files and the pipeline specs read the same way, each failure one line naming the
file (real files in a tmp dir, read by the real loaders)."""
from __future__ import annotations

import pytest

from embodied_tui.data.hardware import load_entry_file
from embodied_tui.data.pipeline_spec import load_spec
from embodied_tui.errors import UserError

LOADERS = [(load_entry_file, "hardware file"), (load_spec, "pipeline spec")]


def refusal(load, path) -> str:
    with pytest.raises(UserError) as err:
        load(path)
    text = str(err.value)
    assert "\n" not in text and "::" not in text, text
    return text


@pytest.mark.parametrize("load, label", LOADERS)
def test_missing_file(tmp_path, load, label):
    path = tmp_path / "nope.yaml"
    assert refusal(load, path) == f"{label} {path}: no such file"


@pytest.mark.parametrize("load, label", LOADERS)
def test_syntax_error_names_the_line(tmp_path, load, label):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nstages: [\n")  # two lines; the open list meets the end of the stream on line 3
    text = refusal(load, path)
    assert text.startswith(f"{label} {path}: line 3: "), text


@pytest.mark.parametrize("load, label", LOADERS)
def test_error_without_a_position_has_one_colon(tmp_path, load, label):
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"\x00x")  # PyYAML's reader refuses the NUL character before any mark exists
    assert refusal(load, path) == f"{label} {path}: not valid YAML"


@pytest.mark.parametrize("load, label", LOADERS)
def test_not_utf8_names_the_decoder_error(tmp_path, load, label):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UnicodeDecodeError) as expected:
        path.read_text(encoding="utf-8")
    assert refusal(load, path) == f"{label} {path}: cannot read it (UnicodeDecodeError: {expected.value})"
