"""The tuned-schedule JSON file: round trip, checks on reuse, and clear errors on bad files."""

from __future__ import annotations

import json

import pytest
import torch

import flowforge
from flowforge.errors import InvalidArgumentError
from flowforge.paths import CondOT
from flowforge.targets import GaussianMixture
from flowforge.tuning import TunedSchedule, load_schedule

RECORD = TunedSchedule(
    path="cond_ot",
    prediction="velocity",
    solver="heun",
    nfe=5,
    grid=(0.0, 0.4, 0.8, 1.0),
    error_before=0.2,
    error_after=0.05,
    budget=1000,
    evaluations=960,
    pilot_samples=32,
    reference={"solver": "rk4", "nfe": 400, "grid": "uniform"},
    candidates={"heun": 0.05},
)


def test_round_trip(tmp_path):
    file = RECORD.save(tmp_path / "tuned" / "heun5.json")
    assert TunedSchedule.load(file) == RECORD
    grid = load_schedule(file, solver="heun", nfe=5)
    assert grid.dtype == torch.float64 and grid.tolist() == list(RECORD.grid)
    assert json.loads(file.read_text())["format"] == "flowforge.tuned_schedule/1"
    assert RECORD.gain == pytest.approx(4.0)


def test_loaded_grid_drives_a_solve(tmp_path):
    file = RECORD.save(tmp_path / "heun5.json")
    gm = GaussianMixture(means=[[1.0, -1.0]], stds=0.5)
    out = flowforge.sample(
        gm.field(CondOT()), torch.randn(4, 2, dtype=torch.float64), path="cond_ot",
        prediction="velocity", solver="heun", nfe=5, time_grid=load_schedule(file),
        return_trajectory=True,
    )  # fmt: skip
    assert out.times[:, 0].tolist() == list(RECORD.grid)


def test_reuse_for_another_solver_or_nfe_is_refused(tmp_path):
    file = RECORD.save(tmp_path / "heun5.json")
    with pytest.raises(InvalidArgumentError, match="nfe=5"):
        load_schedule(file, nfe=7)
    with pytest.raises(InvalidArgumentError, match="solver='heun'"):
        load_schedule(file, solver="euler")


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "cannot read"),
        ('{"grid": [0, 1]}', "not a tuned schedule"),
        ('{"format": "flowforge.tuned_schedule/1", "grid": [0, 1]}', "incomplete"),
    ],
)
def test_bad_files_raise_with_the_fix(tmp_path, content, message):
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(InvalidArgumentError, match=message):
        load_schedule(file)


def test_non_increasing_grid_is_refused(tmp_path):
    data = RECORD.to_json() | {"grid": [0.0, 0.5, 0.5, 1.0]}
    file = tmp_path / "flat.json"
    file.write_text(json.dumps(data))
    with pytest.raises(InvalidArgumentError, match="increasing"):
        load_schedule(file)


def test_missing_file_raises(tmp_path):
    with pytest.raises(InvalidArgumentError, match="flowforge tune"):
        load_schedule(tmp_path / "absent.json")
