"""`benchmarks/checkpoint_parts.py`: a checkpoint packed into size-limited parts comes back
loadable, with the weights exact and the optimizer moments within bfloat16 rounding; a damaged
part is refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from flowforge.models import MLP
from flowforge.paths import CondOT
from flowforge.spec.models import TrainSpec
from flowforge.targets import GaussianMixture
from flowforge.training import Regression, Trainer
from flowforge.training.checkpoint import CheckpointDir

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "checkpoint_parts.py"
spec = importlib.util.spec_from_file_location("checkpoint_parts", SCRIPT)
parts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parts)


def _trainer(seed: int) -> Trainer:
    torch.manual_seed(seed)
    config = TrainSpec(steps=30, batch_size=32, lr=1e-2, checkpoint_every=10)
    data = GaussianMixture([[-1.0, 0.0], [1.0, 0.0]], 0.3).sample(256, torch.Generator())
    objective = Regression.from_spec(CondOT(), "velocity", data, config)
    gen = torch.Generator().manual_seed(seed)
    return Trainer(MLP(2, 64, 2, 8), objective, config, generator=gen)


@pytest.fixture
def packed(tmp_path):
    trainer = _trainer(0)
    ckpts = CheckpointDir(tmp_path / "run")
    trainer.fit(on_checkpoint=lambda step: ckpts.save(step, trainer.state_dict()))
    files = parts.pack(tmp_path / "run", tmp_path / "parts", part_mib=0.01)
    return trainer, files, tmp_path


def test_parts_round_trip_to_a_resumable_checkpoint(packed):
    trainer, files, tmp_path = packed
    assert len(files) > 2 and all(f.stat().st_size <= 0.01 * 2**20 for f in files)
    parts.unpack(tmp_path / "parts", tmp_path / "back")
    other = _trainer(5)
    other.load_state_dict(CheckpointDir(tmp_path / "back").load_latest())
    assert other.step == 30
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, other.model.state_dict()[k]), k
    for k, v in trainer.ema.shadow.items():
        assert torch.equal(v, other.ema.shadow[k]), k
    mine, theirs = trainer.optimizer.state_dict()["state"], other.optimizer.state_dict()["state"]
    rounded = 0
    for i, slot in mine.items():
        for key in parts.MOMENTS:
            back = theirs[i][key]
            assert back.dtype == torch.float32
            assert torch.allclose(back, slot[key], rtol=2**-8, atol=0), (i, key)
            rounded += not torch.equal(back, slot[key])
    assert rounded > 0  # the parts held the moments in bfloat16, not as they were


def test_a_damaged_part_is_refused(packed):
    _, files, tmp_path = packed
    data = bytearray(files[1].read_bytes())
    data[0] ^= 1
    files[1].write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="checksum"):
        parts.unpack(tmp_path / "parts", tmp_path / "back")
