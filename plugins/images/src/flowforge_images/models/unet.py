"""The image U-Net: a time- and class-conditioned velocity/denoiser network for `(C, H, W)` data."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from flowforge.errors import InvalidArgumentError
from flowforge.models.time_embedding import SinusoidalTimeEmbedding
from flowforge_images.models.blocks import (
    Attention,
    Downsample,
    ResBlock,
    Upsample,
    label_index,
    norm,
)

# (base channels, channel multiplier per level, residual blocks per level)
SIZES = {"small": (32, (1, 2, 2), 1), "base": (64, (1, 2, 2), 2)}


class UNetParams(BaseModel):
    """Parameters of the `unet` model."""

    model_config = ConfigDict(extra="forbid")

    size: Literal["small", "base"] = Field(
        "small", description="small: 32 channels, 1 block per level; base: 64 channels, 2 blocks"
    )
    num_classes: Annotated[
        int,
        Field(
            ge=0,
            description="classes of a class-conditional model (0: unconditional); "
            "label -1 or None is the null class that classifier-free guidance uses",
        ),
    ] = 0
    attention: bool = Field(True, description="self-attention at the lowest resolution")
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    channels: Annotated[
        int | None, Field(ge=8, multiple_of=8, description="override the size's base channels")
    ] = None


class UNet(nn.Module):
    """`(x_t (B, C, H, W), t (B,), label (B,) | None) -> (B, C, H, W)`.

    Three resolution levels (H and W must be even twice over: 8, 28, 32 ... work), residual
    blocks with FiLM conditioning on `emb(t) + emb(label)`, self-attention at the lowest
    level and in the middle, skip connections, and a zero-initialised output convolution. With
    `num_classes > 0` the model is class-conditional: `label=None` or entries equal to -1 use a
    learned null class (train with `label_dropout`, sample with `cfg`).

    >>> net = UNet(channels_in=1, num_classes=10)
    >>> net(torch.randn(4, 1, 28, 28), torch.rand(4), label=torch.tensor([0, 1, 2, -1])).shape
    """

    def __init__(
        self,
        channels_in: int,
        size: str = "small",
        num_classes: int = 0,
        attention: bool = True,
        dropout: float = 0.0,
        channels: int | None = None,
    ):
        super().__init__()
        base, mults, blocks = SIZES[size]
        base = channels or base
        emb = 4 * base
        self.num_classes = num_classes
        self.levels = len(mults)
        self.time = nn.Sequential(
            SinusoidalTimeEmbedding(base), nn.Linear(base, emb), nn.SiLU(), nn.Linear(emb, emb)
        )
        self.label = nn.Embedding(num_classes + 1, emb) if num_classes else None
        self.stem = nn.Conv2d(channels_in, base, 3, padding=1)
        self.down = nn.ModuleList()
        widths, c = [base], base
        for i, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(ResBlock(c, base * m, emb, dropout))
                c = base * m
                widths.append(c)
            if i < len(mults) - 1:
                self.down.append(Downsample(c))
                widths.append(c)
        low = attention
        self.mid = nn.ModuleList(
            [
                ResBlock(c, c, emb, dropout),
                Attention(c) if low else nn.Identity(),
                ResBlock(c, c, emb, dropout),
            ]
        )
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for j in range(blocks + 1):
                self.up.append(ResBlock(c + widths.pop(), base * m, emb, dropout))
                c = base * m
                if low and i == len(mults) - 1 and j == blocks:
                    self.up.append(Attention(c))
            if i > 0:
                self.up.append(Upsample(c))
        self.head = nn.Sequential(norm(c), nn.SiLU(), nn.Conv2d(c, channels_in, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x_t: Tensor, t: Tensor, label: Tensor | None = None) -> Tensor:
        b, _, h, w = x_t.shape
        step = 2 ** (self.levels - 1)
        if h % step or w % step:
            raise InvalidArgumentError(
                f"unet: image size {h}x{w} must be divisible by {step} ({self.levels} levels)"
            )
        emb = self.time(t.reshape(-1).expand(b).to(x_t.dtype)).to(x_t.dtype)
        if self.label is not None:
            emb = emb + self.label(label_index(label, b, self.num_classes, x_t.device))
        elif label is not None and bool((label >= 0).any()):
            raise InvalidArgumentError(
                "unet: got class labels, but the model is unconditional; set num_classes"
            )
        hs = [self.stem(x_t)]
        for block in self.down:
            hs.append(block(hs[-1], emb) if isinstance(block, ResBlock) else block(hs[-1]))
        z = hs[-1]
        for block in self.mid:
            z = block(z, emb) if isinstance(block, ResBlock) else block(z)
        for block in self.up:
            z = block(torch.cat([z, hs.pop()], 1), emb) if isinstance(block, ResBlock) else block(z)
        return self.head(z)


def build_unet(params: UNetParams, *, data_shape: tuple[int, ...]) -> UNet:
    """Factory of the registered `unet` model for images of `data_shape = (C, H, W)`."""
    if len(data_shape) != 3:
        raise InvalidArgumentError(
            f"unet: data must be images (C, H, W), got data_shape {tuple(data_shape)}; use an "
            "image dataset or the mlp model"
        )
    return UNet(
        data_shape[0],
        params.size,
        params.num_classes,
        params.attention,
        params.dropout,
        params.channels,
    )


def parameter_counts() -> dict[str, object]:
    """Trainable parameters per size for MNIST-shaped input, for `flowforge plugins --json`."""
    shape, classes = (1, 28, 28), 10
    counts = {
        size: sum(
            p.numel()
            for p in build_unet(
                UNetParams(size=size, num_classes=classes), data_shape=shape
            ).parameters()
        )
        for size in SIZES
    }
    return {"parameters": counts, "for": "data_shape (1, 28, 28), num_classes 10"}
