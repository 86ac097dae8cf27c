"""The uniform mean of several weight sets of one network, e.g. the EMA weights of a run's
checkpoints: a post-hoc average over a window longer than the EMA's own, as in stochastic weight
averaging (docs/training.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from flowforge.errors import CheckpointError


def mean_weights(states: Sequence[dict[str, Tensor]], names: Sequence[str]) -> dict[str, Tensor]:
    """The entry-wise mean of `states` (floating tensors, summed in float64, returned in their
    own dtype); integer buffers (counters, indices) are the last state's. `names[i]` names
    `states[i]` in the error raised when the states are not of one network."""
    if not states:
        raise CheckpointError("no weights to average")
    last = states[-1]
    for state, name in zip(states, names, strict=True):
        if state.keys() != last.keys():
            missing = sorted(set(last) ^ set(state))[:3]
            raise CheckpointError(
                f"{name} holds other tensors than {names[-1]} ({', '.join(missing)} in one only): "
                "average the weights of one network"
            )
        for key, value in state.items():
            if value.shape != last[key].shape:
                raise CheckpointError(
                    f"{name}: {key} has shape {tuple(value.shape)}, {names[-1]} "
                    f"{tuple(last[key].shape)}: average the weights of one network"
                )
    mean = {}
    for key, value in last.items():
        if not value.is_floating_point():
            mean[key] = value
            continue
        total = torch.zeros(value.shape, dtype=torch.float64, device=value.device)
        for state in states:
            total += state[key].to(total.device, torch.float64)
        mean[key] = total.div_(len(states)).to(value.dtype)
    return mean
