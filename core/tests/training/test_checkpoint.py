"""Checkpoints: atomic writes, safe loads, clear errors on corrupt files, keep-last-K."""

from __future__ import annotations

import fractions
import os

import pytest
import torch

from flowforge.errors import CheckpointError
from flowforge.training import CheckpointDir, load_checkpoint, save_checkpoint


def _state():
    return {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 7, "nested": [1, (2, 3.5)]}


def test_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "a" / "ckpt.pt", _state())
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], _state()["model"]["w"])
    assert state["step"] == 7 and state["nested"] == [1, (2, 3.5)]
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temp files left


def test_write_is_atomic_when_saving_fails(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt.pt", _state())

    def broken(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 8})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_save_fsyncs_and_replaces(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1]
    )
    save_checkpoint(tmp_path / "c.pt", _state())
    assert calls.index("fsync") < calls.index("replace")


def test_truncated_file_raises_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_garbage_raises_checkpoint_error(tmp_path, content):
    (tmp_path / "c.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=r"c\.pt"):
        load_checkpoint(tmp_path / "c.pt")


def test_missing_file_and_foreign_files_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a flowforge checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"format": 1, "obj": fractions.Fraction(1, 3)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_checkpoint_dir_keeps_the_newest(tmp_path):
    ckpts = CheckpointDir(tmp_path / "ckpts", keep=2)
    assert ckpts.latest() is None and ckpts.load_latest() is None
    for step in (10, 20, 30, 100):
        ckpts.save(step, {"x": torch.tensor(step)})
    assert [p.name for p in ckpts.all()] == ["step_00000030.pt", "step_00000100.pt"]
    state = ckpts.load_latest()
    assert state["step"] == 100 and int(state["x"]) == 100
