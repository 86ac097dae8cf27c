"""Seeded noise for stochastic samplers: counter-based normals and a Brownian tree.

Every random number is a pure function of `(seed, sample id, element, counter)`: a 32-bit
integer hash of those keys (`draw_hash`) is turned into a standard normal by the inverse error
function. Hence

- a sample's noise depends only on the seed and its own id, not on the batch it is in;
- a Brownian path `W(t)` is one fixed function of `t`, so a coarse and a fine time grid see
  the same path (`BrownianTree`);
- nothing is drawn from a stateful generator inside a solve and nothing is read back to the
  host, so a sampling loop that uses this noise can be captured in one CUDA graph.

Cost. The per-element work runs on int32 words (two's complement, wrapping multiplies: the
same values as `draw_hash` modulo 2^32, tested) and float32 `erfinv`, a few times cheaper than
int64 arithmetic and float64 `erfinv`: a normal is about eleven elementwise passes (seven on
the int32 words, two making the `erfinv` argument: the conversion and one op, `erfinv`, the
scale; a float64 normal one more, the conversion).

The seed of a solve is one int64 drawn from the `generator` given to `flowforge.sample`
(`seed_from`), kept on the device.

    from flowforge.noise import BrownianTree
    tree = BrownianTree(seed=0, shape=(8, 2))          # 8 independent 2-D Brownian paths on [0, 1]
    dw = tree(torch.full((8,), 0.5)) - tree(torch.full((8,), 0.25))   # (8, 2) ~ N(0, 0.25 I)
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from flowforge.errors import InvalidArgumentError
from flowforge.tensors import as_time, expand_like

MASK32 = 0xFFFFFFFF
SEED_HIGH = 2**62
# Salts keep the key streams apart: tree nodes versus numbered draws (e.g. Langevin noise).
TREE_SALT, DRAW_SALT = 0x5BD1E995, 0x27D4EB2F
# A tree node's word: its heap number (2^level + index) times this odd constant, plus the
# salt (mod 2^32); the element's key is mixed in by a full hash, so a linear word suffices.
NODE_STEP = 0x61C88647
# The two multipliers of `hash32` and `draw_hash`; both below 2^31, so `x * c` fits int64 for
# 32-bit x.
MUL_A, MUL_B = 0x21F0AAAD, 0x735A2D97
# Largest number of (level, sample, element) normals made in one tensor by a tree query.
CHUNK_ELEMENTS = 2**24


def hash32(x: Tensor | int) -> Tensor | int:
    """A 32-bit integer hash with full avalanche: `[16 21f0aaad 15 735a2d97 15]` in the notation
    of C. Wellons' hash-prospector (xorshift-multiply rounds, a bijection of [0, 2^32)).

    Works elementwise on int64 tensors holding values in [0, 2^32), and on Python ints. Keys
    and counters are hashed with it (`hash_words`); a draw's word is `draw_hash`.
    """
    x = draw_hash(x)
    return x ^ (x >> 15)


def draw_hash(x: Tensor | int) -> Tensor | int:
    """`hash32` without its last xorshift: the hash of a draw's word, whose top 24 bits make the
    normal (`erfinv_of_words_`). That xorshift only folds bits 15-31 into bits 0-16; without it
    every output bit still depends on every input bit (the first xorshift brings bits 16-31
    down before the multiplies carry them up), bits 17-31 are `hash32`'s, and a draw costs three
    passes fewer. The avalanche of the 24 bits used is a little less even at the lowest four
    (8-11, the uniform's last 2^-20): a flipped input bit flips them with probability 0.484 to
    0.508 (bits 12-31: 0.5 within 0.0015, as `hash32`'s; tested). The reference (int64 tensors
    in [0, 2^32), or ints) for the int32 `mix32_`.
    """
    x = x ^ (x >> 16)
    x = (x * MUL_A) & MASK32
    x = x ^ (x >> 15)
    return (x * MUL_B) & MASK32


def hash_words(*words: Tensor | int) -> Tensor | int:
    """Hash a sequence of 32-bit words (tensors broadcast together, or ints) to one word."""
    h: Tensor | int = 0x9E3779B9
    for w in words:
        h = hash32(h ^ (w & MASK32))
    return h


def signed32(word: Tensor | int) -> Tensor | int:
    """A 32-bit word (int64 tensor or int in [0, 2^32)) as the int32 of the same bits."""
    if isinstance(word, int):
        return word - 2**32 if word >= 2**31 else word
    return torch.where(word >= 2**31, word - 2**32, word).to(torch.int32)


def xorshift16(word: Tensor | int) -> Tensor | int:
    """`draw_hash`'s first round, `w ^ (w >> 16)` on 32-bit words (int64 tensors or ints).

    It is linear over XOR, so `draw_hash(a ^ b)` starts from `xorshift16(a) ^ xorshift16(b)`:
    keys and counters are pre-shifted once and a draw skips that round on its big tensor.
    """
    return word ^ (word >> 16)


def word32(value: int) -> Tensor:
    """A 0-d int32 tensor holding the 32-bit word `value` (mod 2^32) on the CPU.

    The int32 arithmetic below takes its constants as such tensors: a Python int would be
    wrapped into an int64 tensor and converted on every op, which at small sizes costs as much
    as the op (a CPU 0-d tensor also serves tensors on a GPU, as a scalar).
    """
    # torch.full, not torch.tensor: made inside a sampling step (a new counter's word), it is
    # a fill, not a copy of host data
    return torch.full((), signed32(value & MASK32), dtype=torch.int32)


_MUL_A, _MUL_B = word32(MUL_A), word32(MUL_B)
_SHIFT15, _LOW17 = word32(15), word32(2**17 - 1)
_SHIFT16, _LOW16 = word32(16), word32(2**16 - 1)
_SHIFT8 = word32(8)
_NODE_STEP = word32(NODE_STEP)
_HALF_UNIT = torch.tensor(2.0**-24)  # float32: 2^-24
_SQRT2 = {
    dtype: torch.tensor(math.sqrt(2.0), dtype=dtype) for dtype in (torch.float32, torch.float64)
}


def xorshift16_(h: Tensor) -> Tensor:
    """`xorshift16` in place on int32 words (a logical shift: the arithmetic one, masked)."""
    h ^= torch.bitwise_right_shift(h, _SHIFT16).bitwise_and_(_LOW16)
    return h


def mix32_(h: Tensor, scratch: Tensor | None = None) -> Tensor:
    """`draw_hash` after its first round (`xorshift16`), in place on int32 words; returns `h`.

    int32 multiplies wrap modulo 2^32 (two's complement), so the bits equal `draw_hash`'s.
    `scratch`: an int32 tensor of h's shape to work in (default a new one).
    """
    scratch = torch.empty_like(h) if scratch is None else scratch
    h *= _MUL_A
    torch.bitwise_right_shift(h, _SHIFT15, out=scratch)
    h ^= scratch.bitwise_and_(_LOW17)
    return h.mul_(_MUL_B)


def erfinv_of_words_(h: Tensor, out: Tensor | None = None) -> Tensor:
    """`erfinv(c)` in float32 for hashed int32 words `h` (consumed), `c = (2m + 1) / 2^24 - 1`
    with `m` the word's top 24 bits: 2^24 equally likely values, symmetric, exact in float32,
    inside (-1, 1). Times sqrt(2) it is a standard normal with |z| < 5.43.

    `c = 2^-23 (h >> 8) + 2^-24` (every term and the sum are exact), the same number as
    `((h >> 7) | 1) * 2^-24`: the 24-bit integer converted into `out`, then one float32 op in
    place (an op taking the int32 words directly converts them into a temporary first). `out`:
    a float32 tensor of h's shape for the result (default a new one)."""
    h >>= _SHIFT8
    out = torch.empty_like(h, dtype=torch.float32) if out is None else out
    out.copy_(h)
    return torch.add(_HALF_UNIT, out, alpha=2.0**-23, out=out).erfinv_()


def normals_from_words_(
    h: Tensor,
    dtype: torch.dtype,
    factor: Tensor | None = None,
    work: Tensor | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Standard normals in `dtype` from hashed int32 words `h` (consumed): `sqrt(2)` times the
    float32 `erfinv`, multiplied in `dtype` (float32 or float64); in `out` if given, else a new
    tensor unless it is made in place of `h`'s float32 erfinv (no `work`, float32).

    With `factor` (a tensor in `dtype` that broadcasts against the result, e.g. `(P, 1, ...)`
    per row of a block), the erfinv is multiplied by `factor` instead of sqrt(2): a
    `scaled_factor(s)` gives `s` times the normals in the same one multiply. `work`: a float32
    tensor of h's shape for the erfinv, `out` one in `dtype` for the result
    (`SeededNormals.workspace`)."""
    z = erfinv_of_words_(h, work)
    if factor is None:
        factor = _SQRT2.get(dtype, math.sqrt(2.0))
    if dtype != torch.float32:
        return (z.to(dtype) if out is None else out.copy_(z)).mul_(factor)
    return z.mul_(factor) if work is None else torch.mul(z, factor, out=out)


def scaled_factor(scale: Tensor) -> Tensor:
    """The `factor` of `normals_from_words_` (and `SeededNormals.keyed`) that gives normals
    times `scale`: `sqrt(2) * scale`, in scale's dtype."""
    return scale * math.sqrt(2.0)


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
        # keys (B, *event): the hash of (seed, id, element), pre-shifted (`xorshift16`); a draw
        # XORs its counter's word into it and finishes the hash.
        keys = xorshift16(hash_words(per_sample[:, None], element[None, :]))
        self.keys = signed32(keys).reshape(shape)
        self.shape, self.dtype = tuple(shape), dtype

    def words(
        self, key: Tensor | int, out: Tensor | None = None, scratch: Tensor | None = None
    ) -> Tensor:
        """The hashed int32 words of a counter's word `key`: an int gives `(B, *event)`, and so
        does a 0-d int32 tensor of a pre-shifted word (`counter_word`); an int32 tensor
        `(*lead, B)` of pre-shifted per-sample words (or `(*lead, 1)`, one per draw) gives
        `(*lead, B, *event)`. `out`, `scratch`: int32 tensors of that shape to work in."""
        if isinstance(key, int):
            key = word32(xorshift16(key))
        elif key.ndim:
            key = key.reshape(key.shape + (1,) * (len(self.shape) - 1))
        if out is None:
            return mix32_(self.keys ^ key, scratch)
        return mix32_(torch.bitwise_xor(self.keys, key, out=out), scratch)

    def workspace(
        self, draws: int, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Two int32 tensors `(draws, B, *event)` for the intermediates of `keyed(..., work=)` of
        up to `draws` draws at once, and one in `dtype` (default the normals') for its result: a
        sampler that makes blocks of draws reuses them instead of allocating (and on the CPU
        bringing into cache) new memory for every block."""
        shape = (draws, *self.shape)
        out = self.keys.new_empty(shape, dtype=self.dtype if dtype is None else dtype)
        return self.keys.new_empty(shape), self.keys.new_empty(shape), out

    def keyed(
        self,
        key: Tensor | int,
        factor: Tensor | None = None,
        work: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Tensor:
        """The `(B, *event)` normals of a hashed counter word `key` (an int in [0, 2^32), or
        `counter_word`'s tensor; `(*lead, B, *event)` for `words`' per-draw tensors), a new
        tensor. With `factor` (`scaled_factor` of per-draw scales `(*lead, 1, ...)`), the
        normals times those scales, in the factor's dtype, for the multiply that makes them
        normals anyway. `work`: for a key `(P, B or 1)`, a `workspace` of at least P draws (its
        result tensor in that dtype): the normals are then a view of its result tensor, which
        the next call with this workspace overwrites."""
        dtype = self.dtype if factor is None else factor.dtype
        if work is None:
            return normals_from_words_(self.words(key), dtype, factor)
        rows = key.shape[0]
        h, scratch, out = work if work[0].shape[0] == rows else (w[:rows] for w in work)
        words = self.words(key, h, scratch)
        return normals_from_words_(words, dtype, factor, scratch.view(torch.float32), out)

    def normals(self, *counter: int) -> Tensor:
        """The `(B, *event)` normals of the draw numbered `counter` (Python ints)."""
        return self.keyed(counter_word(*counter))


def counter_words(steps: int, per_step: int | None = None) -> Tensor:
    """`(steps,)` int32: the pre-shifted words of the draws numbered `0, 1, ..., steps - 1`
    (`counter_word(n)` for each n; `SeededNormals.keyed` of row n is `normals(n)`). With
    `per_step`, `(steps * per_step,)`: those of the draws `(n, j)` for `j < per_step`, row
    `n * per_step + j` (e.g. a sampler's Langevin iterations)."""
    n = torch.arange(steps, dtype=torch.int64)
    if per_step is None:
        return signed32(xorshift16(hash_words(DRAW_SALT, n)))
    j = torch.arange(per_step, dtype=torch.int64)
    return signed32(xorshift16(hash_words(DRAW_SALT, n[:, None], j[None, :]))).reshape(-1)


@functools.lru_cache(maxsize=4096)
def counter_word(*counter: int) -> Tensor:
    """The pre-shifted word of draw `counter` as a 0-d int32 tensor: `SeededNormals.keyed` of it
    is `normals(*counter)`. Cached: a sampler's steps reuse the words of earlier solves (the
    tensor is only read)."""
    return word32(xorshift16(hash_words(DRAW_SALT, *counter)))


def halves_sum_(rows: Tensor) -> Tensor:
    """The sum over dim 0 of `rows (n, ...)` (overwritten), as a complete binary tree over
    `2^m >= n` leaves, the missing ones 0: row i += row i + h for h = 2^(m-1), ..., 1.

    Elementwise adds in a fixed order: the same bits for any batch, and for more rows that are
    exactly 0 (a deeper tree at a coarser dyadic time); a sum over the rows `j::2^c` for each j,
    then over those `2^c` sums, is the same sum (the first c passes stay inside the classes).
    """
    n = rows.shape[0]
    half = 1 << max(n - 1, 0).bit_length() >> 1
    while half:
        if n > half:
            rows[: n - half] += rows[half:n]
        n, half = min(n, half), half >> 1
    return rows[0]


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
    `depth` normals per element, about eleven elementwise passes over `(depth, B, *event)`
    int32/float32 words (module doc); a walk along times every sample shares (`walk`) makes
    only the levels whose node changed since the previous query. The terms are summed
    elementwise in a fixed order (`halves_sum_`), so the bits are the same for any batch size,
    depth, chunking or walk, in float64 for a float64 tree and float32 otherwise. Times
    outside `[t_lo, t_hi]` are clamped to it.

    Shapes: `shape (B, *event)`; `t_lo`, `t_hi` floats or `(B,)` tensors; `seed` an int or
    int64 tensor `()`/`(B,)`; `ids (B,)` sample ids (default `0..B-1`). `tree(t)` with
    `t (B,)` (or a float) returns `W(t) (B, *event)` in `dtype`.

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
        self.span = as_time(t_hi, shape[0], like) - self.t_lo
        self._inv_span = 1.0 / self.span
        self.depth, self.dtype, self.shape = depth, dtype, tuple(shape)
        # Terms and sums in float64 for a float64 path, else float32 (the normals' precision).
        self._sum_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        scale = [2.0**k for k in range(depth)]
        self._scale = like.new_tensor(scale)[:, None]  # (L, 1): 2^k
        self._last = self._scale - 1.0
        # (L, B): sqrt(2) (erfinv to normal) * sqrt(T) * 2^(-k/2) / 2, the tent's height.
        height = like.new_tensor([math.sqrt(2.0) * 0.5 / math.sqrt(s) for s in scale])
        self._height = height[:, None] * self.span.sqrt()
        # Level k's node j has heap number 2^k + j and word (2^k + j) NODE_STEP + TREE_SALT.
        words = [signed32((TREE_SALT + NODE_STEP * 2**k) & MASK32) for k in range(depth)]
        self._level_words = torch.tensor(words, dtype=torch.int32, device=like.device)
        # W(t_hi) = sqrt(T) Z_root, the root node (heap number 0).
        root = expand_like(self.span.sqrt(), self.normals.keys) * self.normals.keyed(TREE_SALT)
        self._root = root.to(self._sum_dtype)

    def __call__(self, t: float | Tensor) -> Tensor:
        """`W(t) (B, *event)` for `t (B,)` (or a float for every sample)."""
        return self.query(t)[0]

    @property
    def parts(self) -> int:
        """How many interleaved parts a query makes its levels in (level k in part k mod
        parts), so that one part holds at most `CHUNK_ELEMENTS` normals."""
        numel, parts = math.prod(self.shape), 1
        while -(-self.depth // parts) * numel > CHUNK_ELEMENTS and parts < self.depth:
            parts *= 2
        return parts

    def levels(self, t: Tensor, column: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """What a query at float64 times `t (..., B)` needs besides the normals: `u (..., B)` in
        [0, 1], each level's tent weight `(..., L, B)` in the sum dtype and node word
        `(..., L, B)` (int32, pre-shifted as keys are). `column`: for the first sample's span
        only (`B` = 1), the numbers of every sample where all spans are equal."""
        lo, inv, height = self.t_lo, self._inv_span, self._height
        if column:
            lo, inv, height = lo[:1], inv[:1], height[:, :1]
        u = ((t - lo) * inv).clamp_(0.0, 1.0)
        pos = self._scale * u.unsqueeze(-2)
        index = torch.minimum(pos.floor(), self._last)
        # tent = 1 - |2 (pos - index) - 1|, times the level's height
        slope = torch.sub(pos, index).mul_(2.0).sub_(1.0).abs_()
        weight = torch.addcmul(height, height, slope, value=-1.0).to(self._sum_dtype)
        # Node words (wrapping int32 arithmetic is arithmetic mod 2^32), pre-shifted as keys are.
        node = index.to(torch.int32).mul_(_NODE_STEP).add_(self._level_words[:, None])
        return u, weight, xorshift16_(node)

    def walk(self, times: Tensor) -> tuple[list[tuple[Tensor, Tensor, Tensor]], list[int]] | None:
        """A walk along `times (S+1, B or 1)` (float64, on the tree's device) whose samples
        share one time per row and one span: per time its `levels` (one column, made at once
        for the whole walk, `query`'s `levels`), and per step the first level whose node
        changes (`depth` if none): a level's node index fixes every coarser level's
        (`index_k = index_{k+1} // 2`), so a query after the previous one makes only the
        normals of that level and below (`query`'s `first`). None where the samples differ."""
        times = times.detach()
        same = (times == times[:, :1]).all() & (self.span == self.span[0]).all()
        if not bool(same & (self.t_lo == self.t_lo[0]).all()):
            return None
        u, weight, node = self.levels(times[:, :1], column=True)
        changed = (node[1:] != node[:-1]).any(-1)  # (S, L)
        first = torch.where(changed.any(1), changed.int().argmax(1), self.depth)
        return list(zip(u.unbind(0), weight.unbind(0), node.unbind(0), strict=True)), first.tolist()

    def query(
        self,
        t: float | Tensor,
        cached: Tensor | None = None,
        first: int = 0,
        levels: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """`W(t) (B, *event)`, and the float32 erfinv values `(L, B, *event)` of its level nodes
        (None where the levels are made in parts, `parts > 1`).

        With `cached`, such values of a query whose nodes agree at levels below `first`
        (`walk`): those levels are taken from it and only the others are made. `levels`: t's
        `levels`, made beforehand (`walk`). The terms are the same, so the result has the same
        bits as a query from scratch."""
        if levels is None:
            levels = self.levels(as_time(t, self.shape[0], self.t_lo).to(torch.float64))
        u, weight, node = levels
        root = expand_like(u.to(self._sum_dtype), self._root)
        parts = self.parts
        if parts == 1:
            first = first if cached is not None else 0
            z = erfinv_of_words_(self.normals.words(node[first:]))
            if first:
                z = torch.cat((cached[:first], z))
            terms = z.to(self._sum_dtype)  # float32: z itself, which the next query may reuse
            height = expand_like(weight, z)
            terms = torch.mul(z, height) if terms is z else terms.mul_(height)
            w = halves_sum_(terms)
            return torch.addcmul(w, root, self._root).to(self.dtype), z
        # Levels in interleaved parts: `halves_sum_` of the parts' sums is the same sum, in the
        # same order, as of all levels at once.
        sums = []
        for part in range(parts):
            z = erfinv_of_words_(self.normals.words(node[part::parts])).to(self._sum_dtype)
            sums.append(halves_sum_(z.mul_(expand_like(weight[part::parts], z))))
        w = halves_sum_(torch.stack(sums))
        return torch.addcmul(w, root, self._root).to(self.dtype), None

    def increment(self, t_a: float | Tensor, t_b: float | Tensor) -> Tensor:
        """`W(t_b) - W(t_a)`, `(B, *event)`: variance `|t_b - t_a|` per element."""
        return self(t_b) - self(t_a)
