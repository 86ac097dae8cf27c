"""`mean_weights`: the entry-wise mean of weight sets, summed in float64, integer buffers kept
from the last set; sets of another network are refused naming the file."""

from __future__ import annotations

import pytest
import torch

from flowforge.errors import CheckpointError
from flowforge.training.weight_average import mean_weights


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "w": torch.randn(4, 3, generator=g),
        "half": torch.randn(5, generator=g).to(torch.bfloat16),
        "count": torch.tensor(seed, dtype=torch.long),
    }


def test_the_mean_of_each_entry_in_its_own_dtype_with_the_last_integer_buffers():
    states = [_state(s) for s in (1, 2, 3)]
    mean = mean_weights(states, ["a", "b", "c"])
    expected = (states[0]["w"].double() + states[1]["w"].double() + states[2]["w"].double()) / 3
    assert torch.allclose(mean["w"].double(), expected, atol=1e-7, rtol=0)
    assert mean["half"].dtype == torch.bfloat16
    expected_half = torch.stack([s["half"].double() for s in states]).mean(0).to(torch.bfloat16)
    assert torch.equal(mean["half"], expected_half)
    assert mean["count"].item() == 3


def test_the_sum_is_taken_in_float64():
    # in float32, 2**24 + 1 rounds back to 2**24, so a float32 sum would give 5592405.5
    states = [{"w": torch.tensor([v], dtype=torch.float32)} for v in (2.0**24, 1.0, 1.0)]
    assert mean_weights(states, ["a", "b", "c"])["w"].item() == 5592406.0


def test_weights_of_another_network_are_refused_naming_the_file():
    wider = {**_state(2), "w": torch.zeros(4, 5)}
    with pytest.raises(CheckpointError, match=r"b: w has shape \(4, 5\), c \(4, 3\)"):
        mean_weights([_state(1), wider, _state(3)], ["a", "b", "c"])
    extra = {**_state(1), "bias": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"a holds other tensors than b \(bias in one only\)"):
        mean_weights([extra, _state(2)], ["a", "b"])
    with pytest.raises(CheckpointError, match="no weights"):
        mean_weights([], [])
