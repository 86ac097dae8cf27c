"""`flowforge run` end to end: the files it promises, resume, and checkpoint errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from flowforge.cli import main
from flowforge.errors import CheckpointError, SpecError
from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.spec import load_spec
from flowforge.training import load_checkpoint

PNG = b"\x89PNG\r\n\x1a\n"


def _cli(*args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def _quiet(spec, **kwargs):
    return execute(spec, progress=make_progress(disable=True), **kwargs)


def test_run_writes_every_promised_file(write_spec, capsys):
    spec = write_spec()
    assert _cli("run", str(spec), "--device", "cpu") == 0
    out = capsys.readouterr().out
    run = RunDir.newest(spec.parent / "runs", "tiny")
    assert str(run.root) in out.replace("\n", "") and "sliced_wasserstein" in out

    assert load_spec(run.spec_path) == load_spec(spec)
    assert "n_projections: 50" in run.spec_path.read_text()  # resolved: params spelled out
    metrics = json.loads(run.metrics_path.read_text())
    for key in (
        "sliced_wasserstein",
        "sliced_wasserstein_baseline",
        "sliced_wasserstein_ratio",
        "nll",
        "nll_bits_per_dim",
        "train_steps",
        "train_loss",
        "sample_seconds",
    ):
        assert key in metrics, key
    assert metrics["train_steps"] == 30 and np.isfinite(metrics["nll"])
    assert [r["step"] for r in run.read_log()] == [5, 10, 15, 20, 25, 30]
    assert [p.name for p in sorted(run.checkpoints.iterdir())] == [
        "step_00000020.pt",
        "step_00000030.pt",
    ]
    samples = np.load(run.samples / "samples.npy")
    assert samples.shape == (200, 2) and np.isfinite(samples).all()
    csv = np.loadtxt(run.samples / "samples.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv, samples, rtol=1e-5, atol=1e-6)
    for png in ("samples.png", "loss.png"):
        assert (run.plots / png).read_bytes()[:8] == PNG
    report = run.report_path.read_text()
    for text in (
        "two_moons",
        "sliced_wasserstein_baseline",
        "samples/samples.npy",
        "plots/loss.png",
        "flowforge run --resume",
    ):
        assert text in report, text


def test_resume_from_an_earlier_checkpoint_is_bit_exact(write_spec, tmp_path):
    spec = write_spec(output={"dir": str(tmp_path / "runs"), "keep_checkpoints": 5})
    straight = _quiet(spec).run
    # the same run, "killed" after its step-10 checkpoint: later checkpoints never written
    copy = RunDir(straight.root.with_name("killed"))
    shutil.copytree(straight.root, copy.root)
    for ckpt in copy.checkpoints.iterdir():
        if ckpt.name != "step_00000010.pt":
            ckpt.unlink()
    resumed = _quiet(copy.root, resume=True).run
    a = load_checkpoint(straight.checkpoints / "step_00000030.pt")
    b = load_checkpoint(resumed.checkpoints / "step_00000030.pt")
    for part in ("model", "ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert torch.equal(a["rng"]["generator"], b["rng"]["generator"])
    assert np.array_equal(
        np.load(straight.samples / "samples.npy"), np.load(resumed.samples / "samples.npy")
    )
    assert (
        json.loads(straight.metrics_path.read_text())["nll"]
        == json.loads(resumed.metrics_path.read_text())["nll"]
    )
    assert [r["step"] for r in resumed.read_log()] == [5, 10, 15, 20, 25, 30]


def test_resume_by_spec_takes_the_newest_run_and_refuses_a_changed_spec(write_spec):
    spec = write_spec()
    _quiet(spec)
    newest = _quiet(spec).run
    assert _quiet(spec, resume=True).run.root == newest.root
    changed = write_spec("changed.yaml", train={"steps": 40})
    with pytest.raises(SpecError, match="differs"):
        _quiet(changed, resume=True)
    other = write_spec("other.yaml", name="never_ran")
    with pytest.raises(SpecError, match="no run of 'never_ran'"):
        _quiet(other, resume=True)


def test_corrupt_checkpoint_on_resume_is_a_clear_error(write_spec, capsys):
    run = _quiet(write_spec()).run
    latest = sorted(run.checkpoints.iterdir())[-1]
    latest.write_bytes(latest.read_bytes()[:100])
    assert _cli("run", "--resume", str(run.root)) == 1
    err = capsys.readouterr().err
    assert "corrupt or truncated" in err and latest.name in err


def test_checkpoint_of_another_model_is_a_clear_error(write_spec):
    run = _quiet(write_spec()).run
    spec = yaml.safe_load(run.spec_path.read_text())
    spec["model"]["params"]["width"] = 48
    run.spec_path.write_text(yaml.safe_dump(spec))
    with pytest.raises(CheckpointError, match="does not match this model"):
        _quiet(run.root, resume=True)


def test_model_checkpoint_skips_training_and_reproduces_the_samples(write_spec):
    first = _quiet(write_spec()).run
    ckpt = sorted(first.checkpoints.iterdir())[-1]
    again = _quiet(write_spec("reuse.yaml", model={"checkpoint": str(ckpt)})).run
    assert not again.checkpoints.exists()
    assert np.array_equal(
        np.load(first.samples / "samples.npy"), np.load(again.samples / "samples.npy")
    )
    wrong = write_spec("wrong.yaml", model={"checkpoint": str(ckpt), "prediction": "noise"})
    with pytest.raises(CheckpointError, match="prediction"):
        _quiet(wrong)


def test_a_list_of_checkpoints_samples_with_the_mean_of_their_ema_weights(write_spec, tmp_path):
    first = _quiet(write_spec()).run
    ckpts = [str(p) for p in sorted(first.checkpoints.iterdir())]  # steps 20 and 30
    mean = _quiet(write_spec("mean.yaml", model={"checkpoint": ckpts})).run
    # the same as one checkpoint holding the mean, written by hand
    a, b = (load_checkpoint(c) for c in ckpts)
    b["ema"] = {
        k: (a["ema"][k].double() + v.double()).div(2).to(v.dtype) for k, v in b["ema"].items()
    }
    torch.save(b, tmp_path / "by_hand.pt")
    by_hand = _quiet(write_spec("hand.yaml", model={"checkpoint": str(tmp_path / "by_hand.pt")}))
    samples = [np.load(r.samples / "samples.npy") for r in (mean, by_hand.run, first)]
    assert np.array_equal(samples[0], samples[1]) and not np.array_equal(samples[0], samples[2])
    assert "from the mean of the EMA weights of" in mean.report_path.read_text()

    wide = write_spec("wide.yaml", name="wide", model={"params": {"width": 48}})
    other = str(sorted(_quiet(wide).run.checkpoints.iterdir())[-1])
    bad = write_spec("bad.yaml", model={"checkpoint": [ckpts[0], other]})
    with pytest.raises(CheckpointError, match="average the weights of one network"):
        _quiet(bad)
    # the run directory stands for its newest checkpoint, which the list names again
    twice = write_spec("twice.yaml", model={"checkpoint": [str(first.root), ckpts[-1]]})
    with pytest.raises(CheckpointError, match=r"twice \(a run directory stands for its newest"):
        _quiet(twice)


@pytest.mark.parametrize(
    ("path", "prediction", "t_span"),
    [
        ("vp_cosine", "noise", [0.001, 1.0]),
        ("vp_linear", "score", None),
        ("ve", "data", None),
        ("edm", "velocity", None),
    ],
)
def test_every_path_and_prediction_runs_end_to_end(write_spec, path, prediction, t_span):
    spec = write_spec(
        path=path,
        model={"prediction": prediction},
        sample={"solver": "heun", "nfe": 15, "t_span": t_span},
    )
    outcome = _quiet(spec)
    assert all(np.isfinite(v) for v in outcome.metrics.values()), outcome.metrics
    assert np.isfinite(np.load(outcome.run.samples / "samples.npy")).all()
