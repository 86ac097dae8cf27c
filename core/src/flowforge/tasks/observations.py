"""The measurements of an inverse problem, as a spec's `measurement` section gives them.

Either a `.npy` file of `y` (the ground truth is then unknown) or simulated from held-out data
with a seed: `y = A x + noise` for `x` = `split[index : index + count]` (the ground truth of the
error metrics). Problems are `SpecError`s located at the spec field that causes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.operators import Operator
from flowforge.spec.models import MeasurementSpec, SimulateSpec


@dataclass(frozen=True)
class Observations:
    """Measurements `y (M, *measurement_shape)` in data units, float32, and the signals behind
    them `truth (M, *data_shape)` where known (simulated measurements)."""

    y: Tensor
    truth: Tensor | None

    def __len__(self) -> int:
        return self.y.shape[0]


def measurement_shape(operator: Operator, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one measurement of a signal of `data_shape` (the operator applied to 0)."""
    try:
        return tuple(operator.forward(torch.zeros(1, *data_shape, dtype=torch.float64)).shape[1:])
    except InvalidArgumentError as err:
        raise SpecError(
            [("operator", f"cannot measure the data (one point has shape {data_shape}): {err}")]
        ) from None


def observe(
    spec: MeasurementSpec,
    operator: Operator,
    splits: dict[str, Tensor],
    data_shape: tuple[int, ...],
) -> Observations:
    """The measurements `spec` describes, checked against what `operator` measures."""
    shape = measurement_shape(operator, data_shape)
    if spec.file is not None:
        return Observations(read_measurements(spec.file, shape), None)
    if spec.simulate is not None:
        return simulate(spec.simulate, operator, splits)
    raise SpecError([("measurement", "give `file` (a .npy of y) or `simulate`")])


def read_measurements(file: str | Path, shape: tuple[int, ...]) -> Tensor:
    """`y (M, *shape)` from a `.npy` file holding one measurement `shape` or several."""
    where = "measurement.file"
    path = Path(file)
    if not path.is_file():
        msg = f"no such file {str(path)!r} (relative paths are read from {Path.cwd()})"
        raise SpecError([(where, msg)])
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SpecError([(where, f"{path} is not a readable .npy array: {err}")]) from None
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise SpecError([(where, f"{path} holds {array.dtype} values; y must be real numbers")])
    y = torch.from_numpy(np.asarray(array, dtype=np.float32))
    if tuple(y.shape) == shape:
        y = y[None]
    if tuple(y.shape[1:]) != shape or y.shape[0] == 0:
        dims = ", ".join(map(str, shape))
        msg = (
            f"y has shape {tuple(array.shape)}, but the operator measures each signal as "
            f"({dims}): give one measurement ({dims}) or several (M, {dims})"
        )
        raise SpecError([(where, msg)])
    if not bool(torch.isfinite(y).all()):
        raise SpecError([(where, f"{path} holds NaN or infinite values")])
    return y


def simulate(spec: SimulateSpec, operator: Operator, splits: dict[str, Tensor]) -> Observations:
    """`y = A x + noise` for `count` points of a held-out split, the noise drawn from `seed`."""
    data = splits[spec.split]
    end = spec.index + spec.count
    if end > data.shape[0]:
        msg = (
            f"the {spec.split} split has {data.shape[0]} points, so index {spec.index} + count "
            f"{spec.count} = {end} points do not fit; lower them, or enlarge the split in `data`"
        )
        raise SpecError([("measurement.simulate", msg)])
    truth = data[spec.index : end].float()
    gen = torch.Generator().manual_seed(spec.seed)
    y = operator.simulate(truth.double(), gen).float()
    return Observations(y, truth)
