"""Seeded noise for stochastic samplers: counter-based normals and a Brownian tree.

Every random number is a pure function of `(seed, sample id, element, counter)`: a 32-bit
integer hash of those keys (computed with int64 tensor arithmetic that never overflows) is
turned into a standard normal by the inverse error function. Hence

- a sample's noise depends only on the seed and its own id, not on the batch it is in;
- a Brownian path `W(t)` is one fixed function of `t`, so a coarse and a fine time grid see
  the same path (`BrownianTree`);
- nothing is drawn from a stateful generator inside a solve and nothing is read back to the
  host, so a sampling loop that uses this noise can be captured in one CUDA graph.

The seed of a solve is one int64 drawn from the `generator` given to `flowforge.sample`
(`seed_from`), kept on the device.

    from flowforge.noise import BrownianTree
    tree = BrownianTree(seed=0, shape=(8, 2))          # 8 independent 2-D Brownian paths on [0, 1]
    dw = tree(torch.full((8,), 0.5)) - tree(torch.full((8,), 0.25))   # (8, 2) ~ N(0, 0.25 I)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.tensors import as_time, expand_like

MASK32 = 0xFFFFFFFF
SEED_HIGH = 2**62
# Salts keep the key streams apart: tree nodes versus numbered draws (e.g. Langevin noise).
TREE_SALT, DRAW_SALT = 0x5BD1E995, 0x27D4EB2F
# Largest number of (level, sample, element) normals made in one tensor by a tree query.
CHUNK_ELEMENTS = 2**24


def hash32(x: Tensor | int) -> Tensor | int:
    """A 32-bit integer hash with full avalanche: `[16 21f0aaad 15 735a2d97 15]` in the notation
    of C. Wellons' hash-prospector (xorshift-multiply rounds, a bijection of [0, 2^32)).

    Works elementwise on int64 tensors holding values in [0, 2^32), and on Python ints. Both
    multipliers are below 2^31, so `x * c < 2^63` never overflows int64.
    """
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & MASK32
    return x ^ (x >> 15)


def hash_words(*words: Tensor | int) -> Tensor | int:
    """Hash a sequence of 32-bit words (tensors broadcast together, or ints) to one word."""
    h: Tensor | int = 0x9E3779B9
    for w in words:
        h = hash32(h ^ (w & MASK32))
    return h


def normal_from_hash(h: Tensor, dtype: torch.dtype) -> Tensor:
    """A standard normal from a uniform 32-bit hash: `sqrt(2) erfinv(2u - 1)`, |z| < 6.3.

    `2u - 1 = (2h + 1) / 2^32 - 1` is exact in float64, so the tails do not depend on dtype.
    """
    centred = h.to(torch.float64) * 2.0**-31 - (1.0 - 2.0**-32)
    return (math.sqrt(2.0) * torch.erfinv(centred)).to(dtype)


def seed_from(generator: torch.Generator | None, device: torch.device | str) -> Tensor:
    """One int64 seed in [0, 2^62) drawn from `generator` (torch's global RNG if None).

    Returned as a 0-d tensor on `device`: it is never read on the host, so drawing it does not
    synchronise. Solvers call this once in `init`, whatever the number of steps.
    """
    source = generator.device if generator is not None else torch.device(device)
    seed = torch.randint(0, SEED_HIGH, (), generator=generator, device=source, dtype=torch.int64)
    return seed.to(device)


def _seed_tensor(seed: int | Tensor, device: torch.device | str) -> Tensor:
    if isinstance(seed, bool) or not isinstance(seed, int | Tensor):
        raise InvalidArgumentError(f"seed must be an int or an int64 tensor, got {seed!r}")
    if isinstance(seed, int) and not 0 <= seed < 2**63:
        raise InvalidArgumentError(f"seed must be in [0, 2^63), got {seed}")
    seed = torch.as_tensor(seed, device=device)
    if seed.dtype != torch.int64 or seed.ndim > 1:
        raise InvalidArgumentError(
            f"a seed tensor must be int64 of shape () or (B,), got {seed.dtype} {tuple(seed.shape)}"
        )
    return seed


class SeededNormals:
    """Standard normals addressed by counters: draw `k` of sample `i` depends on (seed, ids[i], k).

    `shape (B, *event)`; `seed` an int or an int64 tensor of shape `()` or `(B,)` (one per
    sample); `ids (B,)` the samples' ids (default `0..B-1`: sample i of any batch gets the
    same noise). `normals(*counter)` returns `(B, *event)` normals for a counter of Python
    ints, e.g. `(step, corrector_iteration)`; distinct counters give independent draws.

    >>> noise = SeededNormals(seed=3, shape=(16, 2))
    >>> z = noise.normals(5, 0)    # the same (16, 2) tensor on every call
    """

    def __init__(
        self,
        seed: int | Tensor,
        shape: tuple[int, ...],
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        ids: Tensor | None = None,
    ):
        if len(shape) < 1 or shape[0] < 1:
            raise InvalidArgumentError(f"shape must be (B, *event) with B >= 1, got {shape}")
        device = torch.device("cpu") if device is None else torch.device(device)
        seed = _seed_tensor(seed, device)
        batch, numel = shape[0], math.prod(shape[1:])
        ids = torch.arange(batch, device=device) if ids is None else ids.to(device, torch.int64)
        if ids.shape != (batch,):
            raise InvalidArgumentError(f"ids must have shape ({batch},), got {tuple(ids.shape)}")
        if seed.ndim == 1 and seed.shape != (batch,):
            raise InvalidArgumentError(
                f"a seed tensor must have shape () or ({batch},), got {tuple(seed.shape)}"
            )
        seed = seed.expand(batch)
        per_sample = hash_words(seed & MASK32, seed >> 32, ids & MASK32, ids >> 32)
        element = torch.arange(numel, device=device)
        # keys (B, E): the hash of (seed, id, element); counters are mixed into it per draw.
        self.keys = hash_words(per_sample[:, None], element[None, :])
        self.shape, self.dtype = tuple(shape), dtype

    def keyed(self, key: Tensor | int) -> Tensor:
        """Normals for a hashed counter: an int gives `(B, *event)`; a tensor `(*lead, B)` of
        per-sample keys gives `(*lead, B, *event)`."""
        if isinstance(key, int):
            return normal_from_hash(hash32(self.keys ^ key), self.dtype).reshape(self.shape)
        h = hash32(self.keys ^ key[..., None])
        return normal_from_hash(h, self.dtype).reshape(*key.shape, *self.shape[1:])

    def normals(self, *counter: int) -> Tensor:
        """The `(B, *event)` normals of the draw numbered `counter` (Python ints)."""
        return self.keyed(hash_words(DRAW_SALT, *counter))


class BrownianTree:
    """Independent Brownian motions `W(t)`, one per sample, queried at any per-sample time.

    The path is the Levy-Ciesielski expansion of Brownian motion on `[t_lo, t_hi]` truncated at
    `depth` dyadic levels (Levy 1939; the same object as the Brownian tree of Li et al. 2020,
    "Scalable gradients for SDEs"): with `T = t_hi - t_lo` and `u = (t - t_lo) / T`,

        W(t) = sqrt(T) [u Z_root + sum_{k<depth} 2^(-k/2) / 2 * tent_k(u) Z_{k, floor(2^k u)}],

    where `tent_k` is the unit hat on the level-k dyadic interval containing `u`, and each
    `Z` is a counter-based normal keyed by (seed, sample id, element, tree node). `W` is exact
    Brownian motion at the level-`depth` dyadic times and linear between them (resolution
    `T / 2^depth`; depth 20 resolves ~1e-6 of the interval, far below any step size).

    A query is vectorised over the levels (no loop over the tree, no host sync) and costs
    `depth` normals per element. Times outside `[t_lo, t_hi]` are clamped to it.

    Shapes: `shape (B, *event)`; `t_lo`, `t_hi` floats or `(B,)` tensors; `seed` an int or
    int64 tensor `()`/`(B,)`; `ids (B,)` sample ids (default `0..B-1`). `tree(t)` with
    `t (B,)` (or a float) returns `W(t) (B, *event)` in `dtype` (sums are done in float64).

    >>> tree = BrownianTree(seed=7, shape=(4, 3), depth=20)
    >>> w = tree(torch.tensor([0.1, 0.5, 0.5, 1.0]))           # (4, 3)
    >>> dw = tree.increment(torch.zeros(4), torch.full((4,), 0.5))  # ~ N(0, 0.5 I)
    """

    def __init__(
        self,
        seed: int | Tensor,
        shape: tuple[int, ...],
        t_lo: float | Tensor = 0.0,
        t_hi: float | Tensor = 1.0,
        depth: int = 20,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        ids: Tensor | None = None,
    ):
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 30:
            raise InvalidArgumentError(f"depth must be an int in [1, 30], got {depth!r}")
        self.normals = SeededNormals(seed, shape, torch.float64, device, ids)
        like = self.normals.keys.new_empty(0, dtype=torch.float64)
        self.t_lo = as_time(t_lo, shape[0], like)
        self.t_hi = as_time(t_hi, shape[0], like)
        self.depth, self.dtype, self.shape = depth, dtype, tuple(shape)
        self._levels = torch.arange(depth, device=like.device)
        self._root = self.normals.keyed(hash_words(TREE_SALT, 0))  # W(t_hi) / sqrt(T)

    def __call__(self, t: float | Tensor) -> Tensor:
        """`W(t) (B, *event)` for `t (B,)` (or a float for every sample)."""
        t = as_time(t, self.shape[0], self.t_lo).to(torch.float64)
        span = self.t_hi - self.t_lo
        u = ((t - self.t_lo) / span).clamp(0.0, 1.0)
        w = expand_like(u, self._root) * self._root
        per_chunk = max(1, CHUNK_ELEMENTS // math.prod(self.shape))
        for start in range(0, self.depth, per_chunk):
            # Add level by level: the same order of sums for any batch size or chunking.
            for term in self._level_terms(u, self._levels[start : start + per_chunk]):
                w = w + term
        return (expand_like(span.sqrt(), w) * w).to(self.dtype)

    def increment(self, t_a: float | Tensor, t_b: float | Tensor) -> Tensor:
        """`W(t_b) - W(t_a)`, `(B, *event)`: variance `|t_b - t_a|` per element."""
        return self(t_b) - self(t_a)

    def _level_terms(self, u: Tensor, levels: Tensor) -> Tensor:
        """Each level's tent times its node's normal, `(L, B, *event)` for `levels (L,)`."""
        scale = torch.exp2(levels[:, None].to(u.dtype))  # (L, 1): 2^k
        pos = scale * u[None, :]  # (L, B)
        index = torch.minimum(pos.floor(), scale - 1.0)
        tent = 1.0 - (2.0 * (pos - index) - 1.0).abs()
        heap = scale.to(torch.int64) + index.to(torch.int64)  # node 2^k + j: unique per level
        z = self.normals.keyed(hash_words(TREE_SALT, heap))  # (L, B, *event)
        weight = tent * (0.5 / scale.sqrt())
        return expand_like(weight, z) * z
