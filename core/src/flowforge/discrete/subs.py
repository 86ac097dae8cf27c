"""MDLM's SUBS parameterisation: the model's logits turned into log p(x_1 | x_t) per token.

For the masked path (Sahoo et al. 2024, sec. 3.2.3): the mask token gets probability 0 (its
logit is minus infinity, so a model may output `vocab_size` or `vocab_size + 1` columns), and
tokens that are not masked are carried over (their distribution is a point mass on themselves).
For the uniform path only the normalisation applies.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.discrete.paths import DiscretePath, MaskedPath
from flowforge.errors import InvalidArgumentError


def clean_log_probs(logits: Tensor, x_t: Tensor, path: DiscretePath) -> Tensor:
    """`log p(x_1 = v | x_t)` of shape `(B, L, vocab_size)` from `logits (B, L, V')`.

    `V'` is `vocab_size`, or `vocab_size + 1` for the masked path (the mask column is dropped).
    """
    vocab = path.vocab
    if logits.shape[:-1] != x_t.shape or logits.shape[-1] not in (vocab, path.num_states):
        raise InvalidArgumentError(
            f"the model returned logits of shape {tuple(logits.shape)} for tokens "
            f"{tuple(x_t.shape)}; a discrete model returns (B, L, {vocab}) logits of the clean "
            f"token (the masked path also accepts {path.num_states} columns; the last is ignored)"
        )
    log_p = torch.log_softmax(logits[..., :vocab].float(), dim=-1)
    if not isinstance(path, MaskedPath):
        return log_p
    known = x_t != path.mask_id
    carried = torch.full_like(log_p, float("-inf"))
    carried.scatter_(-1, x_t.clamp(max=vocab - 1).unsqueeze(-1), 0.0)
    return torch.where(known.unsqueeze(-1), carried, log_p)
