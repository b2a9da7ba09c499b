"""Finding a codec by the model id of a .tosc header without loading the whole zoo each time."""

from __future__ import annotations

import os

import pytest

from tosc.errors import UnknownNameError
from tosc.source_coding.learned import zoo
from tosc.zoo import codec_path


def test_model_ids_are_remembered_per_file_and_a_changed_file_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSC_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "codecs"
    folder.mkdir()
    for name in ("mse-only-r1", "mse-only-v3", "tosc-sr-v3"):
        (folder / f"{name}.pt").symlink_to(codec_path(name))
    loads = []
    real_load = zoo.load_any_codec
    monkeypatch.setattr(zoo, "load_any_codec", lambda path, *a: loads.append(path.stem) or real_load(path, *a))
    ids = {name: real_load(folder / f"{name}.pt").model_id for name in ("mse-only-v3", "tosc-sr-v3")}

    assert zoo.find_codec_by_id(ids["tosc-sr-v3"], folder).name == "tosc-sr-v3"
    assert loads == ["mse-only-r1", "mse-only-v3", "tosc-sr-v3"]  # nothing remembered yet: in order
    loads.clear()
    assert zoo.find_codec_by_id(ids["tosc-sr-v3"], folder).name == "tosc-sr-v3"
    assert zoo.find_codec_by_id(ids["mse-only-v3"], folder).name == "mse-only-v3"
    assert loads == ["tosc-sr-v3", "mse-only-v3"]  # each straight from memory
    loads.clear()
    with pytest.raises(UnknownNameError, match="no installed model has id 00ff"):
        zoo.find_codec_by_id(bytes.fromhex("00ff" * 4), folder)
    assert loads == []  # every file's id is known and none matches
    # another file under the same name: its old id is not trusted, the file is read again
    (folder / "tosc-sr-v3.pt").unlink()
    (folder / "tosc-sr-v3.pt").symlink_to(codec_path("task-only-v3"))
    os.utime(folder / "tosc-sr-v3.pt", follow_symlinks=False)
    with pytest.raises(UnknownNameError):
        zoo.find_codec_by_id(ids["tosc-sr-v3"], folder)
    assert loads == ["tosc-sr-v3"]
