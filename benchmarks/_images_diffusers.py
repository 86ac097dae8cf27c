"""The images benchmark's baseline: diffusers' `UNet2DModel` with its DDPM training recipe, and
sampling with its DPM-Solver++ (2M) scheduler.

Recipe: `DDPMScheduler` (1000 steps, linear betas, epsilon prediction), MSE, AdamW lr 1e-4 with
500 warm-up steps, gradient clipping at 1, EMA 0.999 with warm-up, bf16 autocast on CUDA; the
class is dropped to the null class (10) 10% of the time, for classifier-free guidance.
"""

from __future__ import annotations

import time

import torch

NULL_CLASS = 10


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(channels: tuple[int, ...], shape: tuple[int, ...]) -> torch.nn.Module:
    """`UNet2DModel` with block widths `channels`, attention at the two lower levels."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=shape[-1],
        in_channels=shape[0],
        out_channels=shape[0],
        layers_per_block=2,
        block_out_channels=tuple(channels),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D")[: len(channels)],
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D")[-len(channels) :],
        num_class_embeds=NULL_CLASS + 1,
        norm_num_groups=8,
    )


def matched_channels(target: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Block widths (c, 2c, 2c) of the diffusers U-Net whose size is closest to `target`."""
    best = min(
        range(8, 129, 8),
        key=lambda c: abs(n_params(build((c, 2 * c, 2 * c), shape)) - target),
    )
    return (best, 2 * best, 2 * best)


def ddpm():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")


def train(
    net: torch.nn.Module,
    data: torch.Tensor,
    labels: torch.Tensor,
    batch: int,
    budget: float,
    log_every: int,
) -> dict:
    """Train `net` (on its device) for `budget` seconds; leaves the EMA weights in it. The mean
    loss is recorded every `log_every` steps (one host read each, as in our trainer)."""
    from diffusers.training_utils import EMAModel

    device = next(net.parameters()).device
    sched = ddpm()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=1e-2)
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 500))
    ema = EMAModel(net.parameters(), decay=0.999, use_ema_warmup=True)
    gen = torch.Generator(device).manual_seed(0)
    data, labels = data.to(device), labels.to(device)
    amp = device.type == "cuda"
    net.train()
    steps, log, window = 0, [], torch.zeros((), device=device)
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        idx = torch.randint(0, len(data), (batch,), generator=gen, device=device)
        x, y = data[idx], labels[idx]
        drop = torch.rand(len(y), generator=gen, device=device) < 0.1
        y = torch.where(drop, NULL_CLASS, y)
        noise = torch.randn(x.shape, generator=gen, device=device)
        t = torch.randint(0, 1000, (len(x),), generator=gen, device=device)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            pred = net(sched.add_noise(x, noise, t), t, class_labels=y).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        warm.step()
        ema.step(net.parameters())
        steps += 1
        window += loss.detach()
        if steps % log_every == 0:
            elapsed = time.perf_counter() - start
            log.append({"step": steps, "loss": float(window) / log_every, "seconds": elapsed})
            window.zero_()
    sync(device)
    seconds = time.perf_counter() - start
    ema.copy_to(net.parameters())
    net.eval()
    return {"budget_s": budget, "steps": steps, "seconds": seconds, "log": log}


@torch.no_grad()
def sample(
    net: torch.nn.Module,
    labels: torch.Tensor,
    shape: tuple[int, ...],
    nfe: int,
    cfg: float,
    batch: int = 1000,
    seed: int = 1,
) -> tuple[torch.Tensor, float]:
    """Images in [0, 1] for `labels` by DPM-Solver++ 2M in `nfe` steps, and the seconds taken
    (synchronised). `cfg` 1: the conditional model alone; else two branches per step."""
    from diffusers import DPMSolverMultistepScheduler

    device = next(net.parameters()).device
    dpm = DPMSolverMultistepScheduler.from_config(
        ddpm().config, algorithm_type="dpmsolver++", solver_order=2
    )
    gen = torch.Generator(device).manual_seed(seed)
    out = []
    sync(device)
    start = time.perf_counter()
    for lab in labels.split(batch):
        lab = lab.to(device)
        x = torch.randn(len(lab), *shape, generator=gen, device=device)
        dpm.set_timesteps(nfe, device=device)
        for t in dpm.timesteps:
            if cfg == 1:
                eps = net(x, t, class_labels=lab).sample
            else:
                null = torch.full_like(lab, NULL_CLASS)
                both = net(torch.cat([x, x]), t, class_labels=torch.cat([lab, null])).sample
                c, u = both.chunk(2)
                eps = u + cfg * (c - u)
            x = dpm.step(eps, t, x).prev_sample
        out.append(x)
    sync(device)
    seconds = time.perf_counter() - start
    return ((torch.cat(out).float().cpu() + 1) / 2).clamp(0, 1), seconds
