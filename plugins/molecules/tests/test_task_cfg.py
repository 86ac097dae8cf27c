"""Classifier-free guidance through the `molecules` task, for both generator states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from flowforge_molecules.encoding import OneHotEncoding
from flowforge_molecules.models import EGNNParams, build_egnn
from flowforge_molecules.models.product_head import ProductField
from flowforge_molecules.product import ProductEncoding
from flowforge_molecules.product_sampling import GuidedProduct
from flowforge_molecules.sampling import BoundField

from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.experiment.runner import execute
from flowforge.field import Dynamics
from flowforge.guidance.cfg import CFG
from flowforge.paths import CondOT

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "examples" / "molecules" / "qm9_fixture_conditional_smoke.yaml"
ELEMENTS = ("H", "C", "N", "O", "F")


def _spec(tmp_path: Path, state: str, **sample) -> Path:
    doc = yaml.safe_load(SMOKE.read_text())
    doc["task"]["params"].update(state=state, regressor={"steps": 4, "hidden": 8, "layers": 1})
    doc["model"]["params"] = {"hidden": 16, "layers": 2}
    doc["train"].update(steps=6, batch_size=8, checkpoint_every=6, log_every=3)
    doc["sample"].update(num_samples=6, batch_size=6, nfe=3, **sample)
    if state == "product":
        doc["sample"]["solver"] = "euler"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("state", ["product", "onehot"])
def test_conditional_smoke_spec_with_cfg_runs(tmp_path, state):
    outcome = execute(_spec(tmp_path, state), output=tmp_path / "runs", device="cpu")
    metrics = json.loads(outcome.run.metrics_path.read_text())
    assert metrics["train_steps"] == 6
    assert metrics["property_mae_gap"] >= 0 and "property_mae_gap_shuffled" in metrics
    assert (outcome.run.samples / "samples.sdf").is_file()


def test_self_conditioned_product_spec_trains_and_samples_with_cfg(tmp_path, monkeypatch):
    import flowforge_molecules.product_sampling as product_sampling

    seen, original = [], product_sampling.sample_mixed

    def recording(model, *args, **kwargs):
        seen.append(type(model).__name__)
        return original(model, *args, **kwargs)

    monkeypatch.setattr(product_sampling, "sample_mixed", recording)
    spec = _spec(tmp_path, "product")
    doc = yaml.safe_load(spec.read_text())
    doc["model"]["params"]["self_condition"] = True
    doc["train"]["self_condition"] = True
    spec.write_text(yaml.safe_dump(doc))
    outcome = execute(spec, output=tmp_path / "runs", device="cpu")
    assert json.loads(outcome.run.metrics_path.read_text())["train_steps"] == 6
    assert seen and set(seen) == {"SelfConditionedProduct"}
    assert (outcome.run.samples / "samples.sdf").is_file()
    doc["train"]["self_condition"] = False
    spec.write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidArgumentError, match=r"train\.self_condition"):
        execute(spec, output=tmp_path / "runs2", device="cpu")


def test_product_state_samples_on_the_spec_time_grid(tmp_path, monkeypatch):
    import flowforge_molecules.product_sampling as product_sampling

    seen, original = [], product_sampling.sample_mixed

    def recording(*args, **kwargs):
        seen.append(kwargs["time_grid"])
        return original(*args, **kwargs)

    monkeypatch.setattr(product_sampling, "sample_mixed", recording)
    spec = _spec(tmp_path, "product", time_grid="edm")
    doc = yaml.safe_load(spec.read_text())
    doc["sample"]["solver"] = "dpm_solver_pp"
    spec.write_text(yaml.safe_dump(doc))
    outcome = execute(spec, output=tmp_path / "runs", device="cpu")
    assert seen and set(seen) == {"edm"}
    assert (outcome.run.samples / "samples.sdf").is_file()


def test_product_state_refuses_what_it_cannot_do(tmp_path):
    spec = _spec(tmp_path, "product")
    doc = yaml.safe_load(spec.read_text())
    doc["guidance"] = [{"name": "classifier", "params": {"scale": 1.0}}]
    doc["sample"]["solver"] = "heun"
    spec.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="guidance\\[0\\]") as err:
        execute(spec, output=tmp_path / "runs", device="cpu")
    assert "sample.solver" in str(err.value) and "heun" in str(err.value)


def _trunk(features: int):
    return build_egnn(EGNNParams(hidden=16, layers=2), num_features=features, num_properties=1)


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_product_cfg_scale_reduces_to_one_model(scale, float64, generator):
    enc = ProductEncoding(ELEMENTS, CondOT())
    model = ProductField(_trunk(enc.num_features), *enc.num_states).double()
    with torch.no_grad():
        model.field.null.normal_(generator=generator)
    mask = torch.ones(2, 5, dtype=torch.bool)
    x = enc.source(mask, generator)
    x["atom_type"][:, :2] = 1  # some atoms already unmasked (SUBS carries them)
    t, props = torch.rand(2, generator=generator), torch.randn(2, 1, generator=generator)
    guided = GuidedProduct(model, CFG(scale=scale), enc, "velocity")(x, t, properties=props)
    reference = model(x, t, properties=props if scale == 1.0 else None)
    assert torch.allclose(guided["pos"], reference["pos"], atol=1e-10)
    for k in ("atom_type", "charge"):
        path = enc.path.paths[k]
        probs = torch.softmax(guided[k][..., : path.vocab].double(), -1)  # SUBS is float32
        expected = torch.softmax(reference[k][..., : path.vocab], -1)
        masked = x[k] == path.mask_id
        assert torch.allclose(probs[masked], expected[masked], atol=1e-6)
    if scale == 0.0:
        conditional = model(x, t, properties=props)
        assert not torch.allclose(conditional["pos"], reference["pos"])


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_onehot_cfg_scale_reduces_to_one_model(scale, float64, generator):
    enc = OneHotEncoding(ELEMENTS)
    model = _trunk(enc.num_features).double()
    with torch.no_grad():
        model.null.normal_(generator=generator)
    mask = torch.ones(2, 5, dtype=torch.bool)
    x = enc.noise(mask, generator, torch.float64)
    t, props = torch.rand(2, generator=generator), torch.randn(2, 1, generator=generator)
    f = Dynamics(
        BoundField(model, mask), CondOT(), "velocity", [CFG(scale=scale)], {"properties": props}
    )
    reference = model(x, t, mask=mask, properties=props if scale == 1.0 else None)
    assert torch.allclose(f(x, t).value, reference, atol=1e-10)


def test_product_discrete_solver_takes_params(tmp_path, monkeypatch):
    import flowforge_molecules.product_sampling as product_sampling

    seen, original = [], product_sampling.sample_mixed

    def recording(*args, **kwargs):
        seen.append(kwargs["solvers"]["atom_type"])
        return original(*args, **kwargs)

    monkeypatch.setattr(product_sampling, "sample_mixed", recording)
    spec = _spec(tmp_path, "product")
    doc = yaml.safe_load(spec.read_text())
    doc["task"]["params"]["discrete_solver"] = {"name": "tau_leaping", "params": {"temperature": 0}}
    spec.write_text(yaml.safe_dump(doc))
    execute(spec, output=tmp_path / "runs", device="cpu")
    assert seen and {(type(s).__name__, s.temperature) for s in seen} == {("TauLeaping", 0.0)}
    doc["task"]["params"]["discrete_solver"] = {"name": "ancestral", "params": {"temperature": -1}}
    spec.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"task\.params\.discrete_solver\.temperature"):
        execute(spec, output=tmp_path / "runs2", device="cpu")


def test_remasking_on_a_uniform_path_is_refused_before_training(tmp_path):
    spec = _spec(tmp_path, "product")
    doc = yaml.safe_load(spec.read_text())
    doc["task"]["params"].update(
        discrete_path="uniform", discrete_solver={"name": "ancestral", "params": {"eta": 1}}
    )
    spec.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"discrete_solver\.params\.eta.*masked path"):
        execute(spec, output=tmp_path / "runs", device="cpu")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))
