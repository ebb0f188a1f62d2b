"""Properties of the overlap-aware activation and the projector that computes its inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lab  # noqa: F401  (registers the lab's forms: some cases use them)
from topicproj.models.core.activation import ACTIVATIONS, ALL_ACTIVATIONS, OverlapActivation
from topicproj.models.core.projector import Projector, ProjectorConfig

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
unit = st.floats(0.0, 1.0, allow_nan=False, width=32)


def pair(n_items: int, n_topics: int):
    return st.tuples(
        arrays(np.float32, (n_items, n_topics), elements=finite),
        arrays(np.float32, (n_items, n_topics), elements=unit),
    )


def trained_like(name: str, n_topics: int, seed: int = 0) -> OverlapActivation:
    """An activation whose learnable parameters were moved off their initial values."""
    act = OverlapActivation(n_topics, name)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in act.parameters():
            p.add_(torch.rand(p.shape, generator=g) * 0.2)
    return act


@given(pair(5, 4))
def test_relu_leaky_prelu_are_exact_settings(hj):
    h, j = (torch.from_numpy(a) for a in hj)
    assert torch.equal(OverlapActivation(4, "relu")(h, j), F.relu(h))
    assert torch.equal(OverlapActivation(4, "leaky_relu")(h, j), F.leaky_relu(h, 0.01))
    prelu = OverlapActivation(4, "prelu")
    slopes = torch.tensor([0.1, 0.25, 0.5, 0.9])
    with torch.no_grad():
        prelu.slope.copy_(slopes)
    assert torch.equal(prelu(h, j), F.prelu(h, slopes))


@given(pair(6, 3), st.sampled_from(ALL_ACTIVATIONS), st.integers(0, 1000))
def test_outputs_are_finite(hj, name, seed):
    h, j = (torch.from_numpy(a) for a in hj)
    assert torch.isfinite(trained_like(name, 3, seed)(h, j)).all()


@given(arrays(np.float32, (6, 3), elements=finite), st.integers(0, 1000))
@pytest.mark.parametrize("name", ["overlap", "overlap_power", "overlap_shift"])
def test_no_overlap_never_fires(name, h, seed):
    act = trained_like(name, 3, seed)
    with torch.no_grad():
        act.threshold.fill_(-0.5)  # even a threshold pushed below zero by hand is bounded
    y = act(torch.from_numpy(h), torch.zeros(6, 3))
    assert torch.equal(y, torch.zeros(6, 3))


def test_below_threshold_gives_exact_zeros_and_above_passes_h():
    act = OverlapActivation(2, "overlap")
    with torch.no_grad():
        act.threshold.copy_(torch.tensor([0.2, 0.5]))
        act.log_sharpness.fill_(np.log(10.0))
    h = torch.tensor([[2.0, 2.0], [2.0, 2.0], [-1.0, 3.0]])
    j = torch.tensor([[0.2, 0.49], [0.31, 0.61], [0.9, 0.55]])
    y = act(h, j)
    # gate = clamp(10 (J - tau), 0, 1): [[0, 0], [1, 1], [1, 0.5]]; relu(-1) = 0
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.0], [2.0, 2.0], [0.0, 1.5]]))
    assert (y == 0).sum() == 3


@settings(max_examples=25, deadline=None)
@given(pair(3, 2), st.sampled_from(ACTIVATIONS), st.integers(0, 1000))
def test_gradients_match_finite_differences(hj, name, seed):
    h, j = (torch.from_numpy(a).double() for a in hj)
    act = trained_like(name, 2, seed).double()
    tau = torch.maximum(act.threshold, act.min_threshold).detach()
    beta = act.log_sharpness.exp().detach()
    # Finite differences are only meaningful away from the kinks (h = 0 and both ends of the
    # gate's ramp), so inputs that land near one are moved off it.
    h = torch.where(h.abs() < 1e-2, h + 0.5, h)
    for edge in (0.0, 1.0):
        near = (beta * (j - tau) - edge).abs() < 1e-3
        j = torch.where(near, j + 5e-3 / beta, j)
    h.requires_grad_(True)
    j.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: act(a, b), (h, j), eps=1e-7, atol=1e-5)
    # and through the learnable per-topic parameters
    for p in act.parameters():
        assert torch.autograd.gradcheck(
            lambda q, p=p: torch.func.functional_call(
                act,
                {n: (q if t is p else t) for n, t in act.named_parameters()},
                (h.detach(), j.detach()),
            ),
            (p.detach().clone().requires_grad_(True),),
            eps=1e-7,
            atol=1e-5,
        )


def test_learnable_parameters_per_setting():
    names = {n: {k for k, _ in OverlapActivation(3, n).named_parameters()} for n in ACTIVATIONS}
    assert names == {
        "relu": set(),
        "leaky_relu": set(),
        "prelu": {"slope"},
        "overlap": {"threshold", "log_sharpness"},
    }
    with pytest.raises(ValueError, match="unknown activation"):
        OverlapActivation(3, "swish")


def test_constrain_projects_threshold_without_freezing_it():
    act = OverlapActivation(2, "overlap")
    with torch.no_grad():
        act.threshold.copy_(torch.tensor([-0.3, 0.1]))
    act.constrain_()
    assert act.threshold.tolist() == pytest.approx([0.0, 0.1])
    # a threshold sitting on its bound still gets a gradient
    y = act(torch.ones(1, 2), torch.full((1, 2), 0.01)).sum()
    y.backward()
    assert act.threshold.grad[0] != 0


# -- the projector: overlap from the same dot products ----------------------------------------


def dense_reference(
    W: torch.Tensor, b: torch.Tensor, X: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """h and Tanimoto J computed densely, in float64, straight from the definition."""
    W, X = W.double(), X.double()
    m = W / W.max(dim=0).values.clamp_min(1e-12)  # (V, K)
    xm = X @ m
    J = xm / (X.pow(2).sum(1, keepdim=True) + m.pow(2).sum(0) - xm).clamp_min(1e-12)
    return X @ W + b.double(), J


def projector_with(W: torch.Tensor, activation: str = "overlap") -> Projector:
    p = Projector(ProjectorConfig(W.shape[0], W.shape[1], activation))
    with torch.no_grad():
        p.keyword_topics.copy_(W)
        p.bias.copy_(torch.linspace(-0.2, 0.2, W.shape[1]))
    return p.eval()


def test_overlap_is_jaccard_for_binary_sets():
    # topic 0 = {0, 1, 2}, topic 1 = {2, 3}; item = {1, 2, 4}
    W = torch.tensor([[1.0, 0], [1, 0], [1, 1], [0, 1], [0, 0]])
    p = projector_with(W)
    _, J = p.pre_activation(torch.tensor([1, 2, 4]), torch.tensor([0]), torch.ones(3))
    torch.testing.assert_close(J, torch.tensor([[2 / 4, 1 / 4]]))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_projector_matches_dense_reference(seed):
    g = torch.Generator().manual_seed(seed)
    V, K, B = 30, 5, 8
    W = torch.rand(V, K, generator=g) * (torch.rand(V, K, generator=g) < 0.3)
    X = (torch.rand(B, V, generator=g) < 0.15).float() * torch.rand(B, V, generator=g).mul(2)
    X[0] = 0  # an empty item
    p = projector_with(W)
    rows, cols = X.nonzero(as_tuple=True)
    offsets = torch.searchsorted(rows, torch.arange(B))
    h, J = p.pre_activation(cols, offsets, X[rows, cols])
    h_ref, J_ref = dense_reference(W, p.bias.detach(), X)
    torch.testing.assert_close(h.double(), h_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(J.double(), J_ref, rtol=1e-5, atol=1e-6)
    assert ((J >= 0) & (J <= 1 + 1e-6)).all()
    y = p(cols, offsets, X[rows, cols])
    assert torch.equal(y[0], torch.zeros(K))  # no keyword, no topic
    # topics that share no keyword with an item stay at exactly zero
    assert torch.all(y[(X @ W) == 0] == 0)


def test_topic_stats_cache_follows_weight_updates():
    W = torch.rand(6, 3)
    p = projector_with(W)
    idx, off, w = torch.tensor([0, 1]), torch.tensor([0]), torch.ones(2)
    with torch.no_grad():
        first = p(idx, off, w)
        p.keyword_topics.mul_(2.0)  # changes scale and h; the cache must not serve stale norms
        second = p(idx, off, w)
    h_ref, J_ref = dense_reference(
        p.keyword_topics.detach(), p.bias.detach(), torch.tensor([[1.0, 1, 0, 0, 0, 0]])
    )
    expected = p.activation(h_ref.float(), J_ref.float())
    torch.testing.assert_close(second, expected)
    assert not torch.equal(first, second)


def test_power_form_gradient_stays_finite_where_overlap_is_zero():
    act = trained_like("overlap_power", 2)
    y = act(torch.ones(2, 2), torch.tensor([[0.0, 0.3], [0.0, 0.0]]))
    y.sum().backward()
    assert torch.isfinite(act.log_sharpness.grad).all()
    assert y[1].eq(0).all()


def test_topic_stats_cache_follows_moves_between_dtypes():
    p = projector_with(torch.rand(6, 3))
    idx, off, w = torch.tensor([0, 1]), torch.tensor([0]), torch.ones(2)
    with torch.no_grad():
        single = p(idx, off, w)
        p.double()  # a new weight tensor: the cached float32 norms must not be reused
        double = p(idx, off, w.double())
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), single)


def test_overlap_stays_in_unit_interval_with_repeated_keywords():
    from topicproj.models.core.vocabulary import Vocabulary

    vocab = Vocabulary.from_keywords(["a", "b", "c"])
    p = projector_with(torch.tensor([[1.0, 0.0], [0.5, 1.0], [0.0, 1.0]]))
    repeated = vocab.map_batch([["a", "A", " a ", "b"]])
    weighted = vocab.map_batch([["a", "b"]], weights=[[3.0, 1.0]])
    _, J = p.pre_activation(*repeated.torch_inputs())
    _, J_weighted = p.pre_activation(*weighted.torch_inputs())
    assert (J <= 1).all()
    torch.testing.assert_close(J, J_weighted)  # a keyword three times is weight 3


def reference_forward(p: Projector, indices, offsets, weights) -> torch.Tensor:
    """The gate form written out of place, straight from the formulas of models/core/activation."""
    W = p.keyword_topics
    xw = torch.nn.functional.embedding_bag(
        indices, W, offsets, mode="sum", per_sample_weights=weights
    )
    rows = torch.repeat_interleave(
        torch.arange(len(offsets)), torch.diff(offsets, append=torch.tensor([len(indices)]))
    )
    xx = torch.zeros(len(offsets)).index_add(0, rows, weights * weights)
    scale = W.amax(dim=0).clamp_min(1e-12)
    norm2 = (W * W).sum(dim=0) / (scale * scale)
    xm = xw / scale
    J = xm / (xx[:, None] + norm2[None, :] - xm).clamp_min(1e-12)
    h = xw + p.bias
    tau, beta = p.activation.tau_beta()
    return torch.where(h >= 0, h, p.activation.slope * h) * (beta * (J - tau)).clamp(0.0, 1.0)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_in_place_forward_equals_the_formula_in_values_and_gradients(name, seed):
    """The forward pass works in place, with or without autograd; it must match the formula."""
    g = torch.Generator().manual_seed(seed)
    p = Projector(ProjectorConfig(60, 7, name))
    with torch.no_grad():
        p.keyword_topics.copy_(torch.rand(60, 7, generator=g) ** 3)
        p.bias.copy_(torch.randn(7, generator=g) * 0.3)
        p.activation.threshold.copy_(torch.rand(7, generator=g) * 0.2)
        if isinstance(p.activation.slope, torch.nn.Parameter):  # fixed slopes stay as set
            p.activation.slope.copy_(torch.rand(7, generator=g) * 0.5)
    lengths = torch.randint(0, 6, (40,), generator=g)
    indices = torch.randint(0, 60, (int(lengths.sum()),), generator=g)
    offsets = torch.cumsum(lengths, 0) - lengths
    weights = torch.rand(len(indices), generator=g) * 2
    probe = torch.rand(40, 7, generator=g)

    grads = []
    for forward in (p, lambda *a: reference_forward(p, *a)):
        p.zero_grad()
        y = forward(indices, offsets, weights)
        (y * probe).sum().backward()
        grads.append({n: q.grad.clone() for n, q in p.named_parameters() if q.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name_, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name_], atol=1e-6), name_

    with torch.no_grad():
        inference = p(indices, offsets, weights)
        expected = reference_forward(p, indices, offsets, weights)
    assert torch.equal(inference, expected)  # -0.0 == 0.0; every other value the same
    assert (inference == 0).sum() == (expected == 0).sum() > 0


def test_a_process_without_the_lab_knows_only_the_served_forms():
    """The core never imports the lab: a research form is built only where the lab registered
    it, and elsewhere (a server) the error says what it is."""
    import subprocess
    import sys

    script = """
import sys
from topicproj.models.core.activation import make_activation
make_activation(3, "overlap_auto")
try:
    make_activation(3, "overlap_sigmoid")
except ValueError as e:
    print(e)
print("lab" in sys.modules or "lab.candidates" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    message, loaded = result.stdout.strip().splitlines()
    assert "'overlap_sigmoid' is a research form" in message and "overlap_auto" in message
    assert loaded == "False"
