"""Plots of a run as PNG files, drawn on matplotlib's Agg canvas (no display, no global backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

SCATTER_POINTS = 3000


def _figure(width: float = 5.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _points(x: Tensor) -> np.ndarray:
    """The first `SCATTER_POINTS` rows of `x` as a numpy array."""
    return x[:SCATTER_POINTS].cpu().numpy()


def _frame(ax: Any, title: str, ref: np.ndarray) -> None:
    """Title an equal-aspect scatter panel whose limits frame `ref (n, 2)` with 10% padding."""
    pad = 0.1 * (ref.max(0) - ref.min(0))
    lo, hi = ref.min(0) - pad, ref.max(0) + pad
    ax.set_title(title)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")


def plot_samples(samples: Tensor, test: Tensor, out: Path) -> Path | None:
    """Side-by-side scatter of generated samples and held-out data (2-D data only)."""
    if samples.ndim != 2 or samples.shape[1] != 2:
        return None
    fig = _figure(9.0, 3.8)
    axes = fig.subplots(1, 2)
    ref = _points(test)
    for ax, points, title, color in (
        (axes[0], test, "held-out data", "tab:blue"),
        (axes[1], samples, "generated samples", "tab:orange"),
    ):
        p = _points(points)
        ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5, color=color, linewidths=0)
        _frame(ax, f"{title} (n={len(p)})", ref)
    fig.tight_layout()
    fig.savefig(out)
    return out


def plot_loss(records: Sequence[dict[str, Any]], out: Path) -> Path | None:
    """Training loss against step from the `metrics.jsonl` records."""
    points = [
        (r["step"], r["loss"]) for r in records if r.get("loss") is not None and r["loss"] > 0
    ]
    if not points:
        return None
    fig = _figure()
    ax = fig.subplots()
    ax.plot(*zip(*points, strict=True), color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    return out


def plot_posterior(
    samples: Tensor,
    data: Tensor,
    out: Path,
    truth: Tensor | None = None,
    exact: Tensor | None = None,
) -> Path | None:
    """Posterior samples of one measurement over held-out `data` (2-D data only), the true
    signal starred, beside exact posterior samples where they are known."""
    if samples.ndim != 2 or samples.shape[1] != 2:
        return None
    panels = [("posterior samples", samples, "tab:orange")]
    if exact is not None:
        panels.append(("exact posterior", exact, "tab:green"))
    fig = _figure(4.5 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    ref = _points(data)
    for ax, (title, points, color) in zip(axes, panels, strict=True):
        p = _points(points)
        ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.25, color="tab:gray", linewidths=0)
        ax.scatter(p[:, 0], p[:, 1], s=3, alpha=0.6, color=color, linewidths=0)
        if truth is not None:
            t = truth.cpu().numpy()
            ax.scatter([t[0]], [t[1]], marker="*", s=120, color="black", label="truth")
            ax.legend(loc="upper right", fontsize=8)
        _frame(ax, f"{title} (n={len(p)})", ref)
    fig.tight_layout()
    fig.savefig(out)
    return out
