"""Each operator computes what it claims, checked against an independent implementation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from flowforge import registry
from flowforge.errors import InvalidArgumentError, SpecError
from flowforge.operators import (
    MRI,
    Blur,
    Compose,
    Dense,
    Downsample,
    Identity,
    Mask,
    SVDOperator,
    box_mask,
    cartesian_mask,
    gaussian_kernel,
    gaussian_matrix,
    random_mask,
)

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def build(name: str, data_shape, **params):
    return registry.get("operator", name).build(params, data_shape=data_shape)


def test_mask_keeps_observed_entries_in_order():
    mask = torch.tensor([[True, False, True], [False, False, True]])
    op = Mask(mask, data_shape=(2, 2, 3))
    x = torch.arange(24, dtype=F64).reshape(2, 2, 2, 3)
    expected = torch.stack([xi[:, mask].flatten() for xi in x])
    torch.testing.assert_close(op.forward(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(op.pinv(op.forward(x)), x * mask, rtol=0, atol=0)


def test_random_and_box_masks():
    a = random_mask((4, 10), 0.3, gen(1))
    assert int(a.sum()) == 12 and torch.equal(a, random_mask((4, 10), 0.3, gen(1)))
    assert not torch.equal(a, random_mask((4, 10), 0.3, gen(2)))
    box = box_mask((3, 6, 5), (1, 2, 2, 3))
    assert box.shape == (6, 5) and int((~box).sum()) == 6 and not bool(box[1:3, 2:5].any())
    op = build("mask", (3, 16, 16), fraction=0.25, mask_dims=2)
    pixels = op.observed[0]
    assert torch.equal(op.observed, pixels.expand(3, 16, 16)) and int(pixels.sum()) == 64


def circular_convolution(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Direct sum over kernel taps of shifted copies (kernel centre at size // 2)."""
    out = torch.zeros_like(x)
    ch, cw = kernel.shape[0] // 2, kernel.shape[1] // 2
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            out = out + kernel[i, j] * torch.roll(x, (i - ch, j - cw), dims=(-2, -1))
    return out


def test_blur_is_circular_convolution():
    kernel = torch.rand(3, 4, generator=gen(0), dtype=F64)
    x = torch.randn(2, 3, 9, 8, generator=gen(1), dtype=F64)
    op = Blur(kernel, (3, 9, 8))
    torch.testing.assert_close(op.forward(x), circular_convolution(x, kernel))


def test_gaussian_blur_keeps_constants_and_is_symmetric():
    kernel = gaussian_kernel(1.3)
    assert kernel.shape == (9, 9) and abs(float(kernel.sum()) - 1) < 1e-14
    torch.testing.assert_close(kernel, kernel.T.flip(0, 1), rtol=0, atol=1e-16)
    op = build("blur", (1, 16, 16), std=1.3)
    ones = torch.ones(1, 1, 16, 16, dtype=F64)
    torch.testing.assert_close(op.forward(ones), ones)
    matrix = op.matrix()
    torch.testing.assert_close(matrix, matrix.T)


def test_downsample_is_average_pooling():
    x = torch.randn(2, 3, 8, 12, generator=gen(0), dtype=F64)
    op = Downsample(4, (3, 8, 12))
    torch.testing.assert_close(op.forward(x), F.avg_pool2d(x, 4))
    upsampled = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4)
    torch.testing.assert_close(op.pinv(op.forward(x)), upsampled)
    vec = Downsample(3, (9,), spatial_dims=1)
    v = torch.randn(2, 9, generator=gen(1), dtype=F64)
    torch.testing.assert_close(vec.forward(v), v.reshape(2, 3, 3).mean(-1))


@pytest.mark.parametrize("complex_signal", [False, True])
def test_mri_samples_the_orthonormal_fft(complex_signal):
    mask = cartesian_mask((8, 8), 2, generator=gen(0))
    shape = (2, 8, 8) if complex_signal else (3, 8, 8)
    op = MRI(mask, shape, complex_signal=complex_signal)
    x = torch.randn(2, *shape, generator=gen(1), dtype=F64)
    image = torch.complex(x[:, 0], x[:, 1]) if complex_signal else x
    k = torch.fft.fft2(image, norm="ortho")
    y = op.forward(x)
    torch.testing.assert_close(torch.view_as_complex(y.contiguous()), k[..., mask])
    if complex_signal:  # complex images: the rows of A are orthonormal, A^+ = A^T
        torch.testing.assert_close(op.pinv(y), op.adjoint(y))


def test_cartesian_masks():
    random = cartesian_mask((16, 40), 4, 0.1, "random", gen(0))
    columns = random[0]
    assert torch.equal(random, columns.expand(16, 40)) and int(columns.sum()) == 10
    assert bool(columns[[-2, -1, 0, 1]].all()), "the 4 lowest frequencies must be sampled"
    assert torch.equal(random, cartesian_mask((16, 40), 4, 0.1, "random", gen(0)))
    equi = cartesian_mask((4, 12), 3, 0.0, "equispaced", gen(5))[0].nonzero().squeeze(1)
    assert equi.numel() == 4 and torch.equal(torch.diff(equi), torch.full((3,), 3))


SVD_CASES = [
    ("mask", (2, 4, 4), {"fraction": 0.4}),
    ("blur", (1, 6, 6), {"std": 0.8}),
    ("downsample", (2, 4, 6), {}),
    ("mri", (1, 6, 6), {"acceleration": 2, "center_fraction": 0.2}),
    ("mri", (2, 4, 4), {"complex_signal": True, "acceleration": 2}),
    ("dense", (3, 4), {"measurements": 5}),
    ("identity", (5,), {}),
]


@pytest.mark.parametrize(("name", "shape", "params"), SVD_CASES)
def test_singular_values_are_those_of_the_matrix(name, shape, params):
    """The spectrum each operator states equals the SVD of its materialised matrix."""
    op = build(name, shape, **params)
    assert isinstance(op, SVDOperator)
    n = math.prod(shape)
    like = op.vt(torch.zeros(1, *shape, dtype=F64))
    stated = op.singular_values(like).expand(like.shape[1:]).flatten().sort(descending=True)
    exact = torch.linalg.svdvals(op.matrix(shape))
    exact = torch.cat([exact, exact.new_zeros(n - exact.numel())])[:n]
    torch.testing.assert_close(stated.values, exact, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "shape", "params"), SVD_CASES)
def test_marginal_log_likelihood_is_the_gaussian_density(name, shape, params):
    op = build(name, shape, **params, noise_std=0.3)
    a = op.matrix(shape)
    x = torch.randn(3, *shape, generator=gen(1), dtype=F64)
    y = op.simulate(x, gen(2)) + 0.5
    x_var = torch.tensor([0.0, 0.5, 2.0], dtype=F64)
    got = op.marginal_log_likelihood(x, y, x_var)
    for i in range(3):
        cov = 0.09 * torch.eye(a.shape[0], dtype=F64) + x_var[i] * a @ a.T
        dist = torch.distributions.MultivariateNormal(op.forward(x)[i].flatten(), cov)
        torch.testing.assert_close(got[i], dist.log_prob(y[i].flatten()))
    torch.testing.assert_close(got[0], op.log_likelihood(x, y)[0])


def test_noiseless_marginal_log_likelihood_for_full_row_rank():
    op = Dense(gaussian_matrix(3, 5, gen(0)))
    x = torch.randn(2, 5, generator=gen(1), dtype=F64)
    y = torch.randn(2, 3, generator=gen(2), dtype=F64)
    cov = 0.7 * op.weight @ op.weight.T
    expected = torch.distributions.MultivariateNormal(op.forward(x), cov).log_prob(y)
    torch.testing.assert_close(op.marginal_log_likelihood(x, y, 0.7), expected)


def test_log_likelihood_and_simulate():
    op = Mask(torch.tensor([True, False, True, True]), noise_std=0.5)
    x = torch.randn(4, 4, generator=gen(0), dtype=F64)
    y = op.simulate(x, gen(1))
    expected = torch.distributions.Normal(op.forward(x), 0.5).log_prob(y).sum(1)
    torch.testing.assert_close(op.log_likelihood(x, y), expected)
    noise = build("dense", (64,), noise_std=0.2).simulate(torch.zeros(500, 64, dtype=F64), gen(3))
    assert abs(float(noise.std()) - 0.2) < 0.004
    with pytest.raises(InvalidArgumentError, match="noise_std is 0"):
        Identity().log_likelihood(x, x)


def test_identity_any_shape_matrix_needs_a_shape():
    torch.testing.assert_close(Identity().matrix((2, 2)), torch.eye(4, dtype=F64))
    with pytest.raises(InvalidArgumentError, match="signal_shape is required"):
        Identity().matrix()


def test_constants_are_converted_once_per_device_and_dtype():
    op = build("blur", (1, 8, 8))
    x = torch.randn(2, 1, 8, 8)
    op.forward(x), op.forward(x), op.adjoint(x.double())
    assert sorted(str(key[2]) for key in op._converted) == ["torch.complex128", "torch.complex64"]


def test_autograd_flows_through_every_operator():
    for name, shape, params in SVD_CASES:
        op = build(name, shape, **params)
        x = torch.randn(2, *shape, dtype=F64, generator=gen(0), requires_grad=True)
        y = op.forward(x.detach()) + 1.0
        (grad,) = torch.autograd.grad(0.5 * (op.forward(x) - y).square().sum(), x)
        torch.testing.assert_close(grad, op.adjoint(op.forward(x) - y).detach())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Mask(torch.ones(5, 5, dtype=torch.bool), (3, 8, 8)), "does not fit data_shape"),
        (lambda: Mask(torch.zeros(4, dtype=torch.bool)), "observes no entry"),
        (lambda: Mask(torch.ones(4)), "boolean"),
        (lambda: Blur(torch.ones(9, 9), (1, 8, 8)), "larger than the signal"),
        (lambda: Downsample(3, (1, 8, 8)), "divide the signal's size"),
        (lambda: Downsample(2, (8,)), "spatial_dims=1 for vectors"),
        (lambda: MRI(torch.ones(8, 8, dtype=torch.bool), (1, 8, 6)), "mask must be a boolean"),
        (lambda: Dense(torch.ones(3, 5), (2, 3)), "5 columns"),
        (lambda: Dense(torch.ones(3, 4), noise_std=-1.0), "noise_std"),
        (lambda: Compose(Identity(noise_std=0.1)), "give noise_std to the composition"),
        (lambda: Compose(Downsample(2, (8,), 1), Dense(torch.ones(2, 8))), "outputs \\(4,\\)"),
        (lambda: build("mask", (3, 8, 8), fraction=0.5, box=(0, 0, 2, 2)), "not both"),
        (lambda: build("blur", (8,)), "set spatial_dims: 1"),
        (lambda: registry.get("operator", "mask").build({}), "needs the shape of one signal"),
    ],
)
def test_bad_arguments_raise_one_clear_error(make, match):
    with pytest.raises(InvalidArgumentError, match=match):
        make()


def test_wrong_signal_shape_names_the_expected_shape():
    op = build("downsample", (3, 8, 8))
    with pytest.raises(InvalidArgumentError, match=r"x must have shape \(B, 3, 8, 8\)"):
        op.forward(torch.zeros(2, 3, 16, 16))
    with pytest.raises(InvalidArgumentError, match=r"y must have shape \(B, 3, 4, 4\)"):
        op.adjoint(torch.zeros(2, 3, 8, 8))


def test_params_are_validated_like_spec_sections():
    with pytest.raises(SpecError, match="unknown key"):
        registry.get("operator", "blur").validate({"sigma": 2.0})
    with pytest.raises(SpecError, match="greater than 0"):
        registry.get("operator", "blur").validate({"std": 0.0})
    with pytest.raises(SpecError, match=r"unknown operator 'blurr'.*Did you mean 'blur'"):
        registry.get("operator", "compose").validate({"operators": [{"name": "blurr"}]})
    with pytest.raises(SpecError, match=r"operators\[0\].factor"):
        registry.get("operator", "compose").validate(
            {"operators": [{"name": "downsample", "params": {"factor": 0}}]}
        )
