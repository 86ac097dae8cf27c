"""The model-factory contract: a registered factory builds a working vector-field network."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.registry import Component
from flowforge.testing.contracts.base import Contract
from flowforge.testing.require import require

DEFAULT_DATA_SHAPE = (2,)


class ModelFactoryContract(Contract):
    """Contract for model factories (kind `model`) on tensor states `(B, *data_shape)`.

    Factories are built as `flowforge run` builds them: `factory(params, data_shape=...)`.
    Checks: the result is an `nn.Module` mapping `(x_t (B, *data_shape), t (B,))` to the same
    shape and dtype; eval mode is deterministic; with per-sample `t` each sample gets the output
    it gets alone (no mixing across the batch); gradients reach the parameters; the parameter
    model rejects unknown keys with a `SpecError` naming the key. The behavioural checks run on
    a copy whose parameters are perturbed, so a zero-initialised output layer hides nothing.

    Set `data_shape` to a shape the model supports; left unset, `(2,)` is tried and a factory
    that refuses it with `InvalidArgumentError` is skipped. `context` holds further factory
    keyword arguments.

        class TestUNet(ModelFactoryContract):
            name = "unet"
            params = {"channels": 16}
            data_shape = (3, 16, 16)
    """

    kind = "model"
    data_shape: ClassVar[tuple[int, ...] | None] = None
    context: ClassVar[Mapping[str, Any]] = {}
    batch = 3

    @pytest.fixture
    def component(self, registered_component: Component) -> nn.Module:
        shape = self.data_shape or DEFAULT_DATA_SHAPE
        try:
            return registered_component.build(dict(self.params), data_shape=shape, **self.context)
        except InvalidArgumentError as err:
            if self.data_shape is not None:
                raise
            pytest.skip(f"model {registered_component.name!r} refuses data_shape {shape}: {err}")

    @pytest.fixture
    def network(self, component: nn.Module) -> nn.Module:
        """A copy of the model in eval mode with every parameter perturbed by N(0, 0.1^2)."""
        net = copy.deepcopy(component).eval()
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        return net

    @pytest.fixture
    def inputs(self) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(1)
        x_t = torch.randn(self.batch, *(self.data_shape or DEFAULT_DATA_SHAPE), generator=gen)
        return x_t, torch.linspace(0.1, 0.9, self.batch)

    def test_is_module(self, component: nn.Module):
        require(isinstance(component, nn.Module), f"the factory built a {type(component).__name__}")

    def test_output_has_input_shape_and_dtype(self, network: nn.Module, inputs):
        x_t, t = inputs
        out = network(x_t, t)
        require(
            isinstance(out, Tensor) and out.shape == x_t.shape and out.dtype == x_t.dtype,
            f"model maps {tuple(x_t.shape)} {x_t.dtype} to {getattr(out, 'shape', type(out))}",
        )

    def test_deterministic_in_eval_mode(self, network: nn.Module, inputs):
        with torch.no_grad():
            require(torch.equal(network(*inputs), network(*inputs)), "eval-mode output varies")

    def test_per_sample_times(self, network: nn.Module, inputs):
        x_t, t = inputs
        with torch.no_grad():
            batch = network(x_t, t)
            alone = torch.cat([network(x_t[i : i + 1], t[i : i + 1]) for i in range(len(t))])
            other_times = network(x_t, t.flip(0))
        torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)
        require(not torch.allclose(batch, other_times), "the output does not depend on t")

    def test_gradients_reach_parameters(self, network: nn.Module, inputs):
        params = [p for p in network.parameters() if p.requires_grad]
        if not params:
            pytest.skip(f"{type(network).__name__} has no trainable parameters")
        network.train()
        out = network(*inputs)
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
        require(
            any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params),
            "expected any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params)",
        )

    def test_rejects_unknown_params(self, registered_component: Component):
        with pytest.raises(SpecError) as err:
            registered_component.validate({"not_a_parameter": 1}, where="model.params")
        require("not_a_parameter" in str(err.value), str(err.value))
