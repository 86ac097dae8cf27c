"""Single-coil MRI: the orthonormal 2-D FFT, subsampled on a k-space mask (`y = M F x`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.operators.base import check_noise_std, require_shape
from flowforge.operators.blur import hartley
from flowforge.operators.svd import SVDOperator

KSPACE = (-2, -1)


class MRI(SVDOperator):
    """`y = M F x`: the k-space samples where `mask (H, W)` is True, as real pairs `(B, *, m, 2)`.

    `F` is the orthonormal 2-D FFT over the last two dimensions (no shift: the k-space centre is
    at index 0). Signals are real images `(B, *lead, H, W)`, or with `complex_signal=True` complex
    images `(B, *lead, 2, H, W)` whose dimension -3 holds the real and imaginary parts. The
    measurement keeps only the sampled frequencies, as (real, imaginary) in a trailing dimension,
    so `<A x, y>` is the real inner product and the adjoint (zero-filled inverse FFT) is exact.

    Singular values: for complex images the mask itself (`A^+ = A^T`). For real images the
    Fourier coefficients come in conjugate pairs, so `A^T A = F^H diag((M + M(-k)) / 2) F`:
    values `sqrt((M(k) + M(-k)) / 2)` in {0, 1/sqrt(2), 1} on the Hartley basis.

    >>> mask = cartesian_mask((320, 320), acceleration=4, generator=torch.Generator())
    >>> op = MRI(mask, data_shape=(1, 320, 320), noise_std=0.01)
    """

    def __init__(
        self,
        mask: Tensor,
        data_shape: Sequence[int],
        complex_signal: bool = False,
        noise_std: float = 0.0,
    ):
        mask = torch.as_tensor(mask).detach().cpu()
        shape = tuple(data_shape)
        need = 3 if complex_signal else 2
        if (
            mask.dtype != torch.bool
            or mask.ndim != 2
            or len(shape) < need
            or tuple(mask.shape) != shape[-2:]
            or (complex_signal and shape[-3] != 2)
        ):
            layout = "(*lead, 2, H, W)" if complex_signal else "(*lead, H, W)"
            raise InvalidArgumentError(
                f"mri: mask must be a boolean (H, W) tensor and data_shape {layout}; got a "
                f"{mask.dtype} mask of shape {tuple(mask.shape)} and data_shape {shape}"
            )
        self.complex_signal = complex_signal
        self.mask = mask
        self.index = mask.flatten().nonzero().squeeze(1)
        if self.index.numel() == 0:
            raise InvalidArgumentError("mri: the mask samples no frequency")
        lead = shape[: len(shape) - need]
        self.signal_shape = shape
        self.measurement_shape = (*lead, self.index.numel(), 2)
        flipped = torch.roll(mask.flip(KSPACE), (1, 1), dims=KSPACE)  # M(-k)
        pairs = (mask.double() + flipped.double()) / 2
        self.spectrum = mask.double() if complex_signal else pairs.sqrt()
        self.noise_std = check_noise_std(noise_std)

    def _to_complex(self, x: Tensor) -> Tensor:
        if self.complex_signal:
            return torch.complex(x.select(-3, 0), x.select(-3, 1))
        return x

    def _from_complex(self, z: Tensor) -> Tensor:
        if self.complex_signal:
            return torch.stack([z.real, z.imag], dim=-3)
        return z.real

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.signal_shape, "x")
        k = torch.fft.fft2(self._to_complex(x), norm="ortho").flatten(-2)
        return torch.view_as_real(k.index_select(-1, self._on("index", x, torch.long)))

    def adjoint(self, y: Tensor) -> Tensor:
        self._check(y, self.measurement_shape, "y")
        samples = torch.view_as_complex(y.contiguous())
        h, w = self.signal_shape[-2:]
        k = samples.new_zeros(*samples.shape[:-1], h * w)
        k = k.index_copy(-1, self._on("index", y, torch.long), samples)
        return self._from_complex(torch.fft.ifft2(k.reshape(*k.shape[:-1], h, w), norm="ortho"))

    def vt(self, x: Tensor) -> Tensor:
        """Complex images: `F x` as (real, imaginary) in dim -3; real images: Hartley transform."""
        if self.complex_signal:
            return self._from_complex(torch.fft.fft2(self._to_complex(x), norm="ortho"))
        return hartley(x, KSPACE)

    def v(self, s: Tensor) -> Tensor:
        if self.complex_signal:
            return self._from_complex(torch.fft.ifft2(self._to_complex(s), norm="ortho"))
        return hartley(s, KSPACE)

    def singular_values(self, like: Tensor) -> Tensor:
        return self._on("spectrum", like)


def cartesian_mask(
    shape: Sequence[int],
    acceleration: int,
    center_fraction: float = 0.08,
    pattern: Literal["random", "equispaced"] = "random",
    generator: torch.Generator | None = None,
) -> Tensor:
    """A k-space mask `(H, W)` sampling whole columns (lines along dim -2), unshifted layout.

    The `round(center_fraction * W)` lowest-frequency columns are always sampled. `random`: the
    other columns are drawn without replacement to `round(W / acceleration)` in total;
    `equispaced`: every `acceleration`-th column from a random offset, plus the centre.
    """
    h, w = (int(s) for s in shape)
    if acceleration < 1 or not 0 <= center_fraction <= 1:
        raise InvalidArgumentError(
            f"cartesian_mask needs acceleration >= 1 and center_fraction in [0, 1], got "
            f"{acceleration} and {center_fraction}"
        )
    generator = generator or torch.Generator().manual_seed(0)
    n_center = round(center_fraction * w)
    centred = torch.zeros(w, dtype=torch.bool)
    start = w // 2 - n_center // 2
    centred[start : start + n_center] = True
    lines = torch.fft.ifftshift(centred)  # index 0 = zero frequency
    if pattern == "random":
        others = (~lines).nonzero().squeeze(1)
        extra = max(0, round(w / acceleration) - n_center)
        chosen = others[torch.randperm(others.numel(), generator=generator)[:extra]]
        lines[chosen] = True
    elif pattern == "equispaced":
        offset = int(torch.randint(acceleration, (1,), generator=generator))
        lines[offset::acceleration] = True
    else:
        raise InvalidArgumentError(f"pattern must be 'random' or 'equispaced', got {pattern!r}")
    if not lines.any():
        lines[0] = True
    return lines.expand(h, w).clone()


@dataclass(frozen=True)
class MRIParams:
    """Parameters of the registered `mri` operator: a seeded Cartesian line mask."""

    acceleration: Annotated[int, Field(ge=1, description="undersampling factor (W / lines)")] = 4
    center_fraction: Annotated[
        float, Field(ge=0, le=1, description="fraction of columns fully sampled at the centre")
    ] = 0.08
    pattern: Annotated[
        Literal["random", "equispaced"], Field(description="how the other columns are chosen")
    ] = "random"
    complex_signal: Annotated[
        bool, Field(description="signals are complex images (*, 2, H, W), not real (*, H, W)")
    ] = False
    seed: Annotated[int, Field(ge=0, description="seed of the mask")] = 0
    noise_std: Annotated[float, Field(ge=0, description="k-space noise std")] = 0.0


def build_mri(params: MRIParams, *, data_shape: Sequence[int] | None = None) -> MRI:
    """Factory of the registered `mri` operator for images of shape `data_shape`."""
    shape = require_shape(data_shape, "mri")
    if len(shape) < 2:
        raise InvalidArgumentError(f"mri needs images (..., H, W), got data_shape {shape}")
    gen = torch.Generator().manual_seed(params.seed)
    mask = cartesian_mask(
        shape[-2:], params.acceleration, params.center_fraction, params.pattern, gen
    )
    return MRI(mask, shape, params.complex_signal, params.noise_std)
