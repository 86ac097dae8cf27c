"""`reflow` and `distill` stages of `flowforge run`: parents, outputs, resume, and their errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from flowforge.errors import SpecError
from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.spec import parse_spec
from flowforge.tasks import reflow as reflow_stage
from flowforge.training import load_checkpoint

REFLOW = {"stage": "reflow", "reflow": {"pairs": 256, "nfe": 8, "batch_size": 128}}
DISTILL = {
    "stage": "distill",
    "steps": 40,
    "distill": {"rounds": 2, "teacher_nfe": 16},
}
DDIM_1 = {"solver": "ddim", "nfe": 1}


def _quiet(spec, **kwargs):
    return execute(spec, progress=make_progress(disable=True), device="cpu", **kwargs)


@pytest.fixture
def parent(write_spec):
    """A finished parent run (the tiny spec, 30 steps); returns its spec file and run."""
    spec = write_spec("parent.yaml")
    return spec, _quiet(spec).run


def _child(write_spec, filename, parent_ref, train, **sections):
    train = {**train, "parent": str(parent_ref), "checkpoint_every": 10}
    return write_spec(filename, name=filename.split(".")[0], train=train, **sections)


def _final(run, part="ema"):
    return load_checkpoint(sorted(run.checkpoints.iterdir())[-1])[part]


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def _killed_copy(run, keep_step):
    """The run as if killed right after its `keep_step` checkpoint."""
    copy = RunDir(run.root.with_name(f"{run.root.name}-killed-{keep_step}"))
    shutil.copytree(run.root, copy.root)
    for ckpt in copy.checkpoints.iterdir():
        if ckpt.name != f"step_{keep_step:08d}.pt":
            ckpt.unlink()
    return copy


def test_reflow_stage_trains_on_stored_pairs_and_resumes_bit_exactly(
    write_spec, parent, monkeypatch
):
    spec_file, parent_run = parent
    child = _child(write_spec, "reflow.yaml", spec_file, REFLOW, output={"keep_checkpoints": 5})
    run = _quiet(child).run
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["reflow_pairs"] == 256 and metrics["train_steps"] == 30
    recorded = json.loads((run.root / "parent.json").read_text())
    assert recorded["checkpoint"] == str((parent_run.checkpoints / "step_00000030.pt").resolve())
    pairs = load_checkpoint(run.root / "reflow" / "pairs.pt")
    assert pairs["noise"].shape == pairs["data"].shape == (256, 2)

    def regenerate(*args, **kwargs):
        raise AssertionError("a resumed reflow run must reuse its stored pairs")

    monkeypatch.setattr(reflow_stage, "generate_pairs", regenerate)
    resumed = _quiet(_killed_copy(run, 10).root, resume=True).run
    assert _same(_final(run), _final(resumed)) and _same(
        _final(run, "model"), _final(resumed, "model")
    )


def test_reflow_starts_from_the_parent_weights(write_spec, parent):
    spec_file, parent_run = parent
    child = _child(write_spec, "reflow0.yaml", spec_file, {**REFLOW, "lr": 1e-9, "ema_decay": 0.0})
    run = _quiet(child).run
    start, end = _final(parent_run), _final(run)
    assert all(torch.allclose(start[k], end[k], atol=1e-5) for k in start)


def test_distill_stage_resumes_bit_exactly_inside_and_between_rounds(write_spec, parent):
    spec_file, _ = parent
    child = _child(
        write_spec,
        "distill.yaml",
        spec_file,
        DISTILL,
        sample=DDIM_1,
        output={"keep_checkpoints": 5},
    )
    run = _quiet(child).run
    metrics = json.loads(run.metrics_path.read_text())
    assert (metrics["distill_rounds"], metrics["distill_steps"], metrics["train_steps"]) == (
        2,
        1,
        40,
    )
    assert [r["step"] for r in run.read_log()] == [5, 10, 15, 20, 25, 30, 35, 40]
    round_two = load_checkpoint(run.checkpoints / "step_00000030.pt")
    round_one_end = load_checkpoint(run.checkpoints / "step_00000020.pt")
    assert round_two["round"] == 1 and round_one_end["round"] == 0
    # the second round's teacher is the first round's final average
    assert _same(round_two["teacher"], round_one_end["ema"])
    for keep in (20, 30):
        resumed = _quiet(_killed_copy(run, keep).root, resume=True).run
        assert _same(_final(run), _final(resumed)), keep
        assert [r["step"] for r in resumed.read_log()] == [5, 10, 15, 20, 25, 30, 35, 40]


@pytest.mark.parametrize("form", ["run_dir", "name_dir", "spec_file"])
def test_parent_can_be_named_three_ways(write_spec, parent, form):
    spec_file, parent_run = parent
    ref = {"run_dir": parent_run.root, "name_dir": parent_run.root.parent, "spec_file": spec_file}
    child = _child(write_spec, f"reflow-{form}.yaml", ref[form], REFLOW)
    run = _quiet(child).run
    recorded = json.loads((run.root / "parent.json").read_text())
    assert recorded["run"] == str(parent_run.root.resolve())


def test_parent_problems_are_spec_errors_at_train_parent(write_spec, parent, tmp_path):
    spec_file, parent_run = parent
    cases = {
        "does not exist": tmp_path / "nowhere",
        "not a spec": parent_run.checkpoints / "step_00000030.pt",
    }
    for message, ref in cases.items():
        with pytest.raises(SpecError, match=message) as info:
            _quiet(_child(write_spec, "bad.yaml", ref, REFLOW))
        assert info.value.issues[0][0] == "train.parent"
    other_model = _child(
        write_spec, "wider.yaml", spec_file, REFLOW, model={"params": {"width": 48, "depth": 2}}
    )
    with pytest.raises(SpecError, match="different model"):
        _quiet(other_model)
    (parent_run.checkpoints / "step_00000030.pt").unlink()
    with pytest.raises(SpecError, match=r"stopped at step 20 of 30.*--resume"):
        _quiet(_child(write_spec, "early.yaml", spec_file, REFLOW))


def test_distill_needs_a_ddim_sampler_and_an_even_teacher_split(write_spec, parent):
    spec_file, _ = parent
    with pytest.raises(SpecError, match=r"set sample\.solver: ddim") as info:
        _quiet(_child(write_spec, "rk4.yaml", spec_file, DISTILL))
    assert info.value.issues[0][0] == "sample.solver"
    uneven = {**DISTILL, "distill": {"rounds": 2, "teacher_nfe": 15}}
    with pytest.raises(SpecError, match="multiple of 2") as info:
        _quiet(_child(write_spec, "uneven.yaml", spec_file, uneven, sample=DDIM_1))
    assert info.value.issues[0][0] == "train.distill.teacher_nfe"


BASE = {"name": "x", "data": "two_moons", "path": "cond_ot", "model": "mlp"}


@pytest.mark.parametrize(
    ("train", "extra", "message"),
    [
        ({"stage": "reflow"}, {}, "set `parent`"),
        ({"parent": "runs/x"}, {}, "`parent` is read only by stage reflow or distill"),
        ({"reflow": {"pairs": 10}}, {}, "set `stage: reflow`"),
        ({"stage": "reflow", "parent": "p", "coupling": "exact_ot"}, {}, "remove `coupling`"),
        ({"stage": "distill", "parent": "p", "self_condition": True}, {}, "self_condition"),
        ({"stage": "distill", "parent": "p", "steps": 9, "distill": {"rounds": 2}}, {}, "multiple"),
        ({"batch_size": 10, "grad_accumulation": 3}, {}, "must divide batch_size"),
        ({"compile_mode": "reduce-overhead"}, {}, "set `compile: true`"),
        (
            {"stage": "reflow", "parent": "p"},
            {"model": {"name": "mlp", "checkpoint": "c.pt"}},
            "model.checkpoint loads weights",
        ),
    ],
)
def test_stage_settings_are_checked_when_the_spec_loads(train, extra, message):
    doc = {**BASE, "train": train, **extra}
    with pytest.raises(SpecError, match=message):
        parse_spec(yaml.safe_dump(doc))


def test_stage_defaults_are_written_into_the_resolved_spec():
    spec = parse_spec(yaml.safe_dump({**BASE, "train": {"stage": "reflow", "parent": "p"}}))
    assert spec.train.reflow.solver.name == "rk4" and spec.train.distill is None
    again = parse_spec(yaml.safe_dump(spec.model_dump(mode="json")))
    assert again == spec
