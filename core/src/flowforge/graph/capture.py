"""Record a function of CUDA tensors once as a CUDA graph and replay it with new input values.

A CUDA graph replays a fixed sequence of kernels on fixed memory addresses with one launch, so a
sampling loop of many small kernels (the solver's arithmetic between network calls) costs no
per-kernel launch overhead. The price is the usual CUDA-graph contract:

- inputs live in *static buffers*: each call copies the new values into them before the replay
  (`x_init`, the time grid and the solver state are copied; the caller's tensors are untouched);
- outputs live in the graph's private memory pool and are returned as copies, so a later replay
  never overwrites a result the caller holds;
- the function must be *capturable*: every tensor on the GPU, fixed shapes, no host
  synchronisation (`item()`, `if` on a tensor, `nonzero()`, host-to-device copies), no autograd,
  no CPU-side randomness; module parameters are read from their addresses at replay time, so
  in-place weight updates (`load_state_dict`) are seen, replaced parameter tensors are not.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.graph.state import flatten, map_tensors

CAPTURE_RULES = (
    "Inside the steps, the field, the solver and the guidance hooks must run on one GPU without "
    "host synchronisation (no .item(), float(tensor), `if` on a tensor, .cpu(), nonzero(), "
    "torch.tensor(host data)), with fixed shapes and no autograd; see docs/gpu.md. Fix that "
    "code, or pass cuda_graph=False."
)


@contextmanager
def _syncs_raise() -> Iterator[None]:
    """Turn any synchronising CUDA call inside the block into an `InvalidArgumentError`."""
    previous = torch.cuda.get_sync_debug_mode()
    _set_sync_debug_mode("error")
    try:
        yield
    except RuntimeError as err:
        if "synchroniz" not in str(err):
            raise
        raise InvalidArgumentError(
            f"cuda_graph=True: a step synchronises with the host ({err}). {CAPTURE_RULES}"
        ) from err
    finally:
        _set_sync_debug_mode(previous)


def _set_sync_debug_mode(mode: int | str) -> None:
    # PyTorch warns that the mode is a prototype; it is only our capture check here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.cuda.set_sync_debug_mode(mode)


def _device(tensors: list[Tensor]) -> torch.device:
    """The one CUDA device all tensors live on; raises otherwise."""
    devices = {t.device for t in tensors}
    if len(devices) != 1 or next(iter(devices)).type != "cuda":
        found = ", ".join(sorted(str(d) for d in devices)) or "no tensors"
        raise InvalidArgumentError(
            f"cuda_graph=True needs every input tensor (x_init, the time grid, the solver state) "
            f"on one CUDA device; found {found}. Move the model and x_init to the GPU "
            "(x_init.cuda(), model.cuda()), or pass cuda_graph=False."
        )
    return next(iter(devices))


class CapturedCall:
    """`fn(*inputs)` captured in one CUDA graph; calling it replays the graph on new inputs.

    `inputs`: a tuple of CUDA tensors and containers or records holding them (see
    `flowforge.graph.state`); later calls must pass the same structure, shapes and dtypes (the
    cache key ensures it). `fn` runs twice eagerly on a side stream first (lazy initialisation
    such as cuBLAS handles and cuDNN plans happens outside the graph; the second run has CUDA's
    sync debug mode set to "error", so a host synchronisation is reported clearly instead of as
    a broken capture), then once under capture: it is called three times on the first call and
    never again. `generator`: the CUDA `torch.Generator` that `fn` may draw from (None: torch's
    default CUDA generator); it is registered with the graph so that each replay advances it
    like an eager run, and its state is restored after the warm-up and capture runs.
    `draws_from_generator` says whether `fn` drew from a given generator (the graph is then
    bound to that generator object; re-seed it rather than making a new one).

    >>> solve = CapturedCall(lambda x, grid: loop(x, grid), (x_init, grid))
    >>> x_1 = solve((new_noise, grid))   # copies into the static buffers, replays, copies out
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        inputs: tuple[Any, ...],
        generator: torch.Generator | None = None,
    ):
        self._anchors: list[Any] = []  # objects in `structure` by id: keep their ids unique
        tensors, self.structure = flatten(inputs, self._anchors)
        self.device = _device(tensors)
        self.generator = generator
        static_inputs = map_tensors(inputs, torch.clone)
        self._static, _ = flatten(static_inputs)
        own = generator is not None and generator.device.type == "cuda"
        rng = generator if own else torch.cuda.default_generators[self.device.index]
        saved = rng.get_state()
        try:
            with torch.cuda.device(self.device):
                side = torch.cuda.Stream()  # warm-up and capture off the caller's stream
                self.draws_from_generator = self._warm_up(fn, static_inputs, side)
                self.graph = torch.cuda.CUDAGraph()
                if own:
                    self.graph.register_generator_state(generator)
                self._out = self._capture(fn, static_inputs, side)
        finally:
            # Warm-up and capture consume no random numbers: the first replay then draws
            # exactly what an eager solve from the same generator state would.
            rng.set_state(saved)

    def _capture(
        self, fn: Callable[..., Any], static_inputs: tuple[Any, ...], side: torch.cuda.Stream
    ) -> Any:
        try:
            with torch.cuda.graph(self.graph, stream=side):
                return fn(*static_inputs)
        except RuntimeError as err:
            raise InvalidArgumentError(
                f"cuda_graph=True: capturing the solve failed ({err}). {CAPTURE_RULES}"
            ) from err

    def _warm_up(
        self, fn: Callable[..., Any], static_inputs: tuple[Any, ...], side: torch.cuda.Stream
    ) -> bool:
        """Run `fn` twice on the `side` stream; returns whether it drew from `self.generator`."""
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn(*static_inputs)  # lazy initialisation (library handles, plans) may sync once
            before = None if self.generator is None else self.generator.get_state()
            with _syncs_raise():
                fn(*static_inputs)
            drew = before is not None and not torch.equal(before, self.generator.get_state())
        torch.cuda.current_stream().wait_stream(side)
        return drew

    def fits(self, generator: torch.Generator | None) -> bool:
        """Whether a replay serves a solve with `generator` (always, unless `fn` draws from it)."""
        return not self.draws_from_generator or generator is self.generator

    def replay(self) -> None:
        """Replay the graph on whatever the static input buffers hold now (no host sync)."""
        self.graph.replay()

    def __call__(self, inputs: tuple[Any, ...]) -> Any:
        """Copy `inputs` into the static buffers, replay, and return copies of the outputs."""
        tensors, structure = flatten(inputs)
        if structure != self.structure:
            raise InvalidArgumentError(
                "a captured graph was replayed with inputs of another structure; "
                "this is a bug in the caller's cache key"
            )
        with torch.cuda.device(self.device):
            for static, new in zip(self._static, tensors, strict=True):
                static.copy_(new)
            self.replay()
            return map_tensors(self._out, torch.clone)
