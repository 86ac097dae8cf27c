"""`flowforge run` of an inverse_problem spec: the files, their shapes, and metrics with known
answers (identity operator without noise, exact posterior samples)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import flowforge
from flowforge import registry
from flowforge.data.base import Dataset
from flowforge.errors import CheckpointError, SpecError
from flowforge.experiment import RunDir
from flowforge.experiment.progress import make_progress
from flowforge.experiment.runner import execute
from flowforge.tasks import model_space
from flowforge.testing import FakeEntryPoint, plugin_module

PNG = b"\x89PNG\r\n\x1a\n"
# The identity operator without noise and DDNM's projection: every sample is y itself.
EXACT = {
    "operator": {"name": "identity", "params": {"noise_std": 0.0}},
    "guidance": [{"name": "ddnm"}],
    "sample": {"solver": "ddim", "nfe": 4, "num_samples": 16, "batch_size": 16},
    "train": None,
}


def _run(spec, **kwargs):
    return execute(spec, device="cpu", progress=make_progress(disable=True), **kwargs)


def _load(run: RunDir, name: str) -> np.ndarray:
    return np.load(run.root / name)


def test_simulated_measurements_write_every_file(write_inverse):
    outcome = _run(write_inverse())
    run = outcome.run
    y, truth = _load(run, "measurement.npy"), _load(run, "ground_truth.npy")
    recon = _load(run, "reconstructions.npy")
    mean, std = _load(run, "posterior_mean.npy"), _load(run, "posterior_std.npy")
    assert y.shape == (3, 1) and truth.shape == (3, 2)  # a 50% mask of 2-D points
    assert recon.shape == (3, 48, 2) and np.isfinite(recon).all()
    np.testing.assert_allclose(mean, recon.mean(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, recon.std(1, ddof=1), rtol=1e-4, atol=1e-5)

    test = flowforge.registry.create(
        "dataset", "gaussian_mixture_2d", n_train=512, n_val=0, n_test=64, n_modes=4
    ).splits()["test"]
    np.testing.assert_array_equal(truth, test[2:5].numpy())  # index 2, count 3

    metrics = json.loads(run.metrics_path.read_text())
    for key in (
        "residual",
        "residual_posterior_mean",
        "residual_noise_level",
        "residual_truth",
        "error_posterior_mean",
        "rmse_posterior_mean",
        "psnr_posterior_mean",
        "data_range",
        "posterior_std_mean",
        "posterior_mean_error_exact",
        "weights_error_exact",
        "sliced_wasserstein_exact",
        "sliced_wasserstein_exact_floor",
        "sliced_wasserstein_exact_ratio",
        "train_steps",
        "sample_seconds",
    ):
        assert key in metrics and metrics[key] is not None, key
    assert "ssim_posterior_mean" not in metrics  # points, not images
    assert metrics["measurements"] == 3 and metrics["samples_per_measurement"] == 48
    assert metrics["residual_noise_level"] == pytest.approx(0.2)
    assert (run.plots / "posterior.png").read_bytes()[:8] == PNG
    report = run.report_path.read_text()
    for text in (
        "task: `inverse_problem`",
        "operator: `mask`",
        "measurement: simulated from `test` points 2 to 4, noise seed 4",
        "48 samples per measurement",
        "sliced_wasserstein_exact",
        "reconstructions.npy",
        "posterior_std.npy",
        "flowforge run --resume",
    ):
        assert text in report, text


def test_identity_without_noise_reconstructs_the_truth(write_inverse):
    metrics = _run(write_inverse(**EXACT)).metrics
    assert metrics["residual"] < 1e-5 and metrics["residual_posterior_mean"] < 1e-5
    assert metrics["error_posterior_mean"] < 1e-5 and metrics["posterior_std_mean"] < 1e-5
    assert metrics["residual_noise_level"] == 0.0 and metrics["residual_truth"] == 0.0
    assert metrics["psnr_posterior_mean"] > 100


def test_matrix_free_model_space_gives_the_same_answer(write_inverse, monkeypatch):
    monkeypatch.setattr(model_space, "DENSE_LIMIT", 0)  # the Rescaled operator, solved by CG
    metrics = _run(write_inverse(**EXACT)).metrics
    assert metrics["residual"] < 1e-4 and metrics["error_posterior_mean"] < 1e-4


def test_measurements_from_a_file(write_inverse, tmp_path):
    y = np.array([1.5], dtype=np.float32)  # one measurement of the observed coordinate
    np.save(tmp_path / "y.npy", y)
    outcome = _run(write_inverse(measurement={"file": str(tmp_path / "y.npy")}))
    run = outcome.run
    assert _load(run, "measurement.npy").shape == (1, 1)
    assert _load(run, "reconstructions.npy").shape == (1, 48, 2)
    assert not (run.root / "ground_truth.npy").exists()
    assert (
        "error_posterior_mean" not in outcome.metrics
        and "psnr_posterior_mean" not in outcome.metrics
    )
    assert "residual" in outcome.metrics and "sliced_wasserstein_exact" in outcome.metrics
    assert "ground truth unknown" in run.report_path.read_text()


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (np.zeros((2, 3), dtype=np.float32), "y has shape (2, 3), but the operator measures"),
        (np.array([np.nan], dtype=np.float32), "NaN or infinite"),
        (None, "no such file"),
    ],
)
def test_bad_measurement_files_name_the_field(write_inverse, tmp_path, content, text):
    file = tmp_path / "y.npy"
    if content is not None:
        np.save(file, content)
    with pytest.raises(SpecError) as info:
        _run(write_inverse(measurement={"file": str(file)}))
    ((loc, msg),) = info.value.issues
    assert loc == "measurement.file" and text in msg
    assert not list((tmp_path / "runs" / "tiny-inverse").glob("*/checkpoints/*.pt"))  # no training


def test_too_many_simulated_measurements_name_the_field(write_inverse):
    with pytest.raises(SpecError) as info:
        _run(write_inverse(measurement={"simulate": {"index": 60, "count": 10}}))
    assert info.value.issues[0][0] == "measurement.simulate"
    assert "the test split has 64 points" in info.value.issues[0][1]


def test_an_operator_that_cannot_measure_the_data_names_the_field(write_inverse):
    spec = write_inverse(operator={"name": "downsample", "params": {"factor": 2}})
    with pytest.raises(SpecError) as info:
        _run(spec)
    assert info.value.issues[0][0] == "operator"
    assert "(2,)" in info.value.issues[0][1]


def test_resume_continues_training_and_writes_the_same_outputs(write_inverse):
    spec = write_inverse()
    first = _run(spec).run
    ckpt = first.checkpoints / "step_00000020.pt"
    ckpt.unlink()  # as if stopped after step 10
    again = _run(first.root, resume=True).run
    assert again.root == first.root and ckpt.is_file()
    straight = _run(spec).run
    np.testing.assert_array_equal(
        _load(again, "reconstructions.npy"), _load(straight, "reconstructions.npy")
    )


def test_the_prior_can_come_from_a_parent_run(write_inverse, tmp_path):
    parent = _run(write_inverse("parent.yaml", name="parent")).run
    by_name = str(tmp_path / "runs" / "parent")  # <output.dir>/<name>: its newest run
    child = _run(write_inverse("child.yaml", model={"checkpoint": by_name})).run
    metrics = json.loads(child.metrics_path.read_text())
    assert metrics["train_steps"] == 0 and not child.checkpoints.exists()
    by_dir = _run(write_inverse("child2.yaml", model={"checkpoint": str(parent.root)})).run
    np.testing.assert_array_equal(
        _load(child, "reconstructions.npy"), _load(by_dir, "reconstructions.npy")
    )
    with pytest.raises(CheckpointError, match="holds no run with a checkpoint"):
        _run(write_inverse("orphan.yaml", model={"checkpoint": str(tmp_path)}))


@dataclass(frozen=True)
class TinyImages(Dataset):
    """Smooth random 8x8 grey images in [0, 1]."""

    def splits(self) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        coarse = torch.rand(96, 1, 4, 4, generator=gen)
        images = torch.nn.functional.interpolate(coarse, scale_factor=2, mode="bilinear")
        return {"train": images[:64], "val": images[64:64], "test": images[64:]}


@pytest.fixture
def with_images():
    module = plugin_module(
        "flowforge_tiny_images",
        register_datasets=flowforge.hookimpl(lambda register: register("tiny_images", TinyImages)),
    )
    reg = registry.load(allowed=None, entry_points=[FakeEntryPoint("tiny", module)])
    with registry.using(reg):
        yield


@pytest.mark.usefixtures("with_images")
def test_images_get_ssim_with_the_explicit_data_range(write_inverse):
    pytest.importorskip("skimage")
    spec = write_inverse(
        data="tiny_images", task={"name": "inverse_problem", "params": {"data_range": 2.0}}, **EXACT
    )
    outcome = _run(spec)
    assert _load(outcome.run, "reconstructions.npy").shape == (3, 16, 1, 8, 8)
    assert _load(outcome.run, "posterior_std.npy").shape == (3, 1, 8, 8)
    metrics = outcome.metrics
    assert metrics["ssim_posterior_mean"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["data_range"] == 2.0
    assert "sliced_wasserstein_exact" not in metrics  # no exact posterior for this prior
