"""The continuous-time ELBO of masked diffusion (MDLM/RADD) and the uniform path's cross-entropy.

For the masked path, with `w(t) = alpha'(t) / (1 - alpha(t))` (`NoiseSchedule.elbo_weight`):

    -log p(x) <= E_{t ~ U(0,1), x_t} [ w(t) * sum_{l masked in x_t} -log p(x_1^l | x_t) ]

(MDLM, Sahoo et al. 2024, eq. 10; with the log-linear schedule w = 1/(1 - t) = 1/lambda, RADD's
lambda-DCE loss, Ou et al. 2024). The bound is the same for every schedule with alpha(0) = 0 and
alpha(1) = 1 (a change of variables); a time-independent model (RADD) gives the same value.
The uniform path is trained with the plain cross-entropy of the clean token over every position
(the mixture-path loss of discrete flow matching, Gat et al. 2024), which is no likelihood bound.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.discrete.paths import DiscretePath, MaskedPath
from flowforge.tensors import expand_like


def token_nll(log_p: Tensor, x_1: Tensor) -> Tensor:
    """`-log p(x_1^l | x_t)` per token `(B, L)` from clean log-probabilities `(B, L, V)`."""
    return -log_p.gather(-1, x_1.unsqueeze(-1)).squeeze(-1)


def diffusion_loss(
    log_p: Tensor, x_1: Tensor, x_t: Tensor, t: Tensor, path: DiscretePath, valid: Tensor | None
) -> Tensor:
    """Per-sequence loss `(B,)` in nats: the ELBO integrand (masked) or cross-entropy (uniform).

    `log_p (B, L, V)` SUBS log-probabilities at `(x_t, t)`; `valid (B, L)` False on padding.
    """
    if isinstance(path, MaskedPath):
        counted = x_t == path.mask_id
        weight = expand_like(path.noise_schedule.elbo_weight(t.double()), x_1).float()
    else:
        counted = torch.ones_like(x_1, dtype=torch.bool)
        weight = torch.ones((), device=x_1.device)
    if valid is not None:
        counted = counted & valid
    nll = torch.where(counted, token_nll(log_p, x_1), torch.zeros((), device=x_1.device))
    return (weight * nll).sum(dim=1)
