"""Optimizers and gradient clipping against torch.optim (float64), in-place updates, argument errors."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
import torch

import bptt
from bptt import RNN, Dense, Sequential
from bptt.optim import SGD, Adagrad, Adam, RMSprop, clip_grad_norm

N_STEPS = 25

# (id, bptt factory, torch factory): the same hyper-parameters on both sides.
CASES: list[tuple[str, Callable, Callable]] = [
    ("sgd", lambda m: SGD(m, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    (
        "sgd-momentum",
        lambda m: SGD(m, lr=0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    (
        "sgd-nesterov",
        lambda m: SGD(m, lr=0.05, momentum=0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    ),
    ("adagrad", lambda m: Adagrad(m), lambda p: torch.optim.Adagrad(p)),
    (
        "adagrad-custom",
        lambda m: Adagrad(m, lr=0.3, eps=1e-3),
        lambda p: torch.optim.Adagrad(p, lr=0.3, eps=1e-3),
    ),
    ("rmsprop", lambda m: RMSprop(m), lambda p: torch.optim.RMSprop(p)),
    (
        "rmsprop-custom",
        lambda m: RMSprop(m, lr=0.002, alpha=0.8, eps=1e-4),
        lambda p: torch.optim.RMSprop(p, lr=0.002, alpha=0.8, eps=1e-4),
    ),
    ("adam", lambda m: Adam(m), lambda p: torch.optim.Adam(p)),
    (
        "adam-custom",
        lambda m: Adam(m, lr=0.02, betas=(0.8, 0.95), eps=1e-6),
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.95), eps=1e-6),
    ),
    (
        "adam-small-betas",
        lambda m: Adam(m, lr=0.01, betas=(0.3, 0.5), eps=1e-3),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.3, 0.5), eps=1e-3),
    ),
]


def make_model(seed: int = 0) -> Sequential:
    """A small RNN followed by a Dense read-out, seeded."""
    rng = np.random.default_rng(seed)
    return Sequential([RNN(3, 4, rng=rng), Dense(4, 2, rng=rng)])


def torch_leaves(model: Sequential) -> dict[str, torch.Tensor]:
    """float64 torch leaf tensors holding copies of the model's parameters."""
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in model.params.items()}


def random_grads(model: Sequential, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One random gradient per parameter, scaled per step so magnitudes vary."""
    scale = rng.uniform(0.1, 3.0)
    return {k: scale * rng.standard_normal(v.shape) for k, v in model.params.items()}


@pytest.mark.parametrize(("make_ours", "make_theirs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_optimizer_matches_torch_over_25_steps(make_ours: Callable, make_theirs: Callable) -> None:
    """25 steps on the same random gradients end at torch.optim's weights to 1e-12."""
    model = make_model()
    leaves = torch_leaves(model)
    opt, topt = make_ours(model), make_theirs(list(leaves.values()))
    rng = np.random.default_rng(10)
    for _ in range(N_STEPS):
        grads = random_grads(model, rng)
        for k, g in grads.items():
            model.grads[k][...] = g
            leaves[k].grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        topt.step()
    for k, p in model.params.items():
        np.testing.assert_allclose(p, leaves[k].detach().numpy(), rtol=0, atol=1e-12, err_msg=k)
    start = make_model().params
    assert all(not np.array_equal(model.params[k], start[k]) for k in start)


@pytest.mark.parametrize("make_ours", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_step_updates_params_in_place(make_ours: Callable) -> None:
    """step() writes into the very arrays of model.params and of each layer, never rebinding them."""
    model = make_model()
    before = dict(model.params)
    layer_arrays = [model[0].params["W_ih"], model[0].params["W_hh"], model[1].params["W"]]
    values = {k: v.copy() for k, v in before.items()}
    opt = make_ours(model)
    rng = np.random.default_rng(11)
    for _ in range(3):
        for k, g in random_grads(model, rng).items():
            model.grads[k][...] = g
        opt.step()
    after = model.params
    for k, arr in before.items():
        assert after[k] is arr
        assert not np.array_equal(arr, values[k])
    assert model[0].params["W_ih"] is layer_arrays[0]
    assert model[0].params["W_hh"] is layer_arrays[1]
    assert model[1].params["W"] is layer_arrays[2]


def test_optimizer_sees_gradients_from_backward() -> None:
    """After forward/backward, plain SGD moves each weight by exactly -lr times backward's gradient."""
    model = make_model(1)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 2, 3))
    opt = SGD(model, lr=0.1)
    y = model.forward(x)
    model.backward(rng.standard_normal(y.shape))
    expected = {k: model.params[k] - 0.1 * model.grads[k] for k in model.params}
    assert all(np.any(g != 0) for g in model.grads.values())
    opt.step()
    for k, p in model.params.items():
        np.testing.assert_array_equal(p, expected[k])


def set_grads(model: Sequential, leaves: dict[str, torch.Tensor], scale: float, seed: int) -> None:
    """Write the same random gradients into the model's grads and the torch leaves' .grad."""
    rng = np.random.default_rng(seed)
    for k, v in model.params.items():
        g = scale * rng.standard_normal(v.shape)
        model.grads[k][...] = g
        leaves[k].grad = torch.tensor(g, dtype=torch.float64)


@pytest.mark.parametrize("max_norm", [0.5, 1.0, 3.0])
def test_clip_grad_norm_clips_like_torch(max_norm: float) -> None:
    """When the norm exceeds max_norm, the returned norm and clipped grads match torch's clip_grad_norm_."""
    model = make_model()
    leaves = torch_leaves(model)
    set_grads(model, leaves, 2.0, seed=13)
    norm = clip_grad_norm(model, max_norm)
    ref_norm = torch.nn.utils.clip_grad_norm_(list(leaves.values()), max_norm).item()
    assert isinstance(norm, float)
    assert ref_norm > max_norm
    np.testing.assert_allclose(norm, ref_norm, rtol=1e-9, atol=0)
    for k, g in model.grads.items():
        ref = leaves[k].grad.numpy()
        np.testing.assert_allclose(g, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max(), err_msg=k)
    total = np.sqrt(sum(np.sum(g * g) for g in model.grads.values()))
    assert total <= max_norm


@pytest.mark.parametrize("max_norm", [100.0, 1e6])
def test_clip_grad_norm_leaves_small_grads_alone(max_norm: float) -> None:
    """When the norm is below max_norm, the grads are untouched (as in torch) and the norm is returned."""
    model = make_model()
    leaves = torch_leaves(model)
    set_grads(model, leaves, 0.5, seed=14)
    before = {k: g.copy() for k, g in model.grads.items()}
    norm = clip_grad_norm(model, max_norm)
    ref_norm = torch.nn.utils.clip_grad_norm_(list(leaves.values()), max_norm).item()
    np.testing.assert_allclose(norm, ref_norm, rtol=1e-9, atol=0)
    assert ref_norm < max_norm
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, before[k])
        np.testing.assert_array_equal(g, leaves[k].grad.numpy())


def test_clip_grad_norm_scales_in_place() -> None:
    """Clipping scales the model's own gradient arrays, the ones optimizers read."""
    model = make_model()
    set_grads(model, torch_leaves(model), 5.0, seed=15)
    arrays = dict(model.grads)
    clip_grad_norm(model, 0.1)
    for k, g in model.grads.items():
        assert g is arrays[k]
    assert bptt.clip_grad_norm is clip_grad_norm


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan")])
@pytest.mark.parametrize("cls", [SGD, Adagrad, RMSprop, Adam])
def test_non_positive_lr_raises(cls: type, lr: float) -> None:
    """lr must be a positive number; the ValueError names lr."""
    with pytest.raises(ValueError, match=rf"{cls.__name__}: lr must be"):
        cls(make_model(), lr=lr)


def test_negative_momentum_raises() -> None:
    """A negative SGD momentum raises ValueError naming momentum."""
    with pytest.raises(ValueError, match="SGD: momentum must be"):
        SGD(make_model(), lr=0.1, momentum=-0.5)


def test_nesterov_without_momentum_raises() -> None:
    """nesterov=True with zero momentum raises ValueError naming nesterov and momentum."""
    with pytest.raises(ValueError, match=re.escape("SGD: nesterov=True needs momentum > 0")):
        SGD(make_model(), lr=0.1, nesterov=True)


@pytest.mark.parametrize(
    ("betas", "name"),
    [
        ((1.0, 0.999), "betas[0]"),
        ((-0.1, 0.999), "betas[0]"),
        ((0.9, 1.0), "betas[1]"),
        ((0.9, 1.5), "betas[1]"),
        ((0.9, -1e-3), "betas[1]"),
    ],
)
def test_adam_betas_out_of_range_raise(betas: tuple[float, float], name: str) -> None:
    """Each Adam beta must lie in [0, 1); the ValueError names the offending one."""
    with pytest.raises(ValueError, match=re.escape(f"Adam: {name} must be")):
        Adam(make_model(), betas=betas)


@pytest.mark.parametrize("max_norm", [0.0, -1.0])
def test_non_positive_max_norm_raises(max_norm: float) -> None:
    """clip_grad_norm refuses max_norm <= 0 with a ValueError naming max_norm."""
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be"):
        clip_grad_norm(make_model(), max_norm)


def test_load_state_dict_refuses_a_partial_set_of_buffers() -> None:
    """Adam's state with ``exp_avg_sq`` dropped is refused by name, never a KeyError mid-step."""
    model = Sequential([RNN(2, 3, rng=1), Dense(3, 1, rng=2)])
    opt = Adam(model, lr=0.1)
    model.forward(np.ones((2, 1, 2)))
    model.backward(np.ones((2, 1, 1)))
    opt.step()
    state = opt.state_dict()
    del state["0.W_ih/exp_avg_sq"]
    with pytest.raises(ValueError, match=r"'0.W_ih' has buffers \['exp_avg'\]; expected"):
        Adam(model, lr=0.1).load_state_dict(state)
