"""The lab's issue-16 candidate forms: values and gradients against the formulas written out of
place, and their reduction to ReLU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lab import candidates
from topicproj.models.core.projector import Projector, ProjectorConfig

NEW = (
    "overlap_coverage",
    "overlap_capped",
    "overlap_hard",
    "overlap_quantile",
    "overlap_target",
    "overlap_coverage_target",
)


def random_projector(name: str, seed: int, n_keywords: int = 60, n_topics: int = 7):
    g = torch.Generator().manual_seed(seed)
    p = Projector(ProjectorConfig(n_keywords, n_topics, name))
    with torch.no_grad():
        p.keyword_topics.copy_(torch.rand(n_keywords, n_topics, generator=g) ** 3)
        p.bias.copy_(torch.randn(n_topics, generator=g) * 0.3)
        p.activation.threshold.copy_(torch.rand(n_topics, generator=g) * 0.2)
    lengths = torch.randint(0, 6, (40,), generator=g)
    indices = torch.randint(0, n_keywords, (int(lengths.sum()),), generator=g)
    offsets = torch.cumsum(lengths, 0) - lengths
    weights = (torch.rand(len(indices), generator=g) < 0.8).float() + 0.0  # mostly 0/1
    weights[weights == 0] = 1.0
    return p, (indices, offsets, weights), torch.rand(40, n_topics, generator=g)


def reference(p: Projector, indices, offsets, weights) -> torch.Tensor:
    """Each form straight from the formulas of lab/candidates.py, out of place."""
    W = p.keyword_topics
    xw = F.embedding_bag(indices, W, offsets, mode="sum", per_sample_weights=weights)
    rows = torch.repeat_interleave(
        torch.arange(len(offsets)), torch.diff(offsets, append=torch.tensor([len(indices)]))
    )
    xx = torch.zeros(len(offsets)).index_add(0, rows, weights * weights)[:, None]
    scale = W.amax(dim=0).clamp_min(1e-12)
    norm2 = ((W * W).sum(dim=0) / (scale * scale))[None, :]
    xm = xw / scale
    form = p.activation.form
    if form == "coverage":
        ov = (xm / xx.clamp_min(1e-12)).clamp(0, 1)
    elif form == "capped":
        ov = (xm / (xx + norm2.clamp(max=candidates.CAP) - xm).clamp_min(1e-12)).clamp(0, 1)
    else:
        ov = xm / (xx + norm2 - xm).clamp_min(1e-12)
    tau, beta = p.activation.tau_beta()
    ramp = (beta * (ov - tau)).clamp(0, 1)
    relu = (xw + p.bias).clamp(min=0)
    if form == "hard":
        return relu * (ramp + ((ramp > 0.5).float() - ramp).detach())
    return relu * ramp


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("seed", [0, 1])
def test_values_and_gradients_equal_the_formula(name, seed):
    p, inputs, probe = random_projector(name, seed)
    p.eval()  # overlap_quantile moves tau in training; here the formula is the subject
    grads, values = [], []
    for forward in (p, lambda *a: reference(p, *a)):
        p.zero_grad()
        y = forward(*inputs)
        (y * probe).sum().backward()
        values.append(y.detach())
        grads.append({n: q.grad.clone() for n, q in p.named_parameters() if q.grad is not None})
    torch.testing.assert_close(values[0], values[1], rtol=1e-6, atol=1e-6)
    assert (values[0] == 0).sum() > 0 and (values[0] > 0).sum() > 0
    assert grads[0].keys() == grads[1].keys() and "keyword_topics" in grads[0]
    for key, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NEW)
def test_with_the_gate_always_open_each_form_is_relu(name):
    p, inputs, _ = random_projector(name, 3)
    p.eval()
    with torch.no_grad():
        p.activation.threshold.fill_(-1.0)
        p.activation.min_threshold.fill_(-1.0)
        p.activation.log_sharpness.fill_(0.0)  # tau + 1/beta = 0: the gate is 1 on [0, 1]
        y = p(*inputs)
        h, _ = p.pre_activation(*inputs)
    assert torch.equal(y, F.relu(h))


def test_coverage_of_a_binary_item_is_the_share_of_its_keywords_in_the_topic():
    xm = torch.tensor([[1.0, 2.0], [0.0, 3.0]])  # items of 4 and 3 keywords, 0/1 membership
    xx = torch.tensor([4.0, 3.0])
    assert torch.equal(candidates.coverage(xm, xx), torch.tensor([[0.25, 0.5], [0.0, 1.0]]))


def test_capped_tanimoto_is_jaccard_for_small_topics_and_bounded_for_large_ones():
    xm, xx = torch.tensor([[1.0, 1.0]]), torch.tensor([2.0])
    norm2 = torch.tensor([3.0, 400.0])  # a 3-keyword topic, and a 400-keyword one
    J = candidates.capped_tanimoto(xm, xx, norm2, cap=4.0)
    torch.testing.assert_close(J, torch.tensor([[1 / 4, 1 / 5]]))


def test_hard_gate_is_a_step_forward_and_the_ramp_backward():
    act = candidates.CandidateActivation(3, "overlap_hard")
    with torch.no_grad():
        act.threshold.fill_(0.1)
        act.log_sharpness.fill_(torch.log(torch.tensor(10.0)))  # ramp from 0.1 to 0.2
    h = torch.ones(1, 3)
    J = torch.tensor([[0.12, 0.16, 0.3]], requires_grad=True)
    y = act(h, J)
    assert y.tolist() == [[0.0, 1.0, 1.0]]
    y.sum().backward()
    torch.testing.assert_close(J.grad, torch.tensor([[10.0, 10.0, 0.0]]))


def test_quantile_threshold_follows_the_quantile_of_the_firing_items():
    act = candidates.CandidateActivation(2, "overlap_quantile").train()
    h = torch.tensor([[1.0, -1.0], [1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
    J = torch.tensor([[0.1, 0.9], [0.2, 0.4], [0.3, 0.6], [0.9, 0.9]])
    act(h, J)
    # topic 0: median of 0.1, 0.2, 0.3; topic 1: of 0.4, 0.6 (items with h <= 0 left out)
    expected = (1 - candidates.MOMENTUM) * torch.tensor([0.2, 0.5])
    torch.testing.assert_close(act.threshold, expected)
    with torch.no_grad():
        act(h, J)  # no gradient (evaluation, serving): tau stays
    torch.testing.assert_close(act.threshold, expected)
    assert not isinstance(act.threshold, torch.nn.Parameter)


def test_targeted_gate_raises_its_multiplier_while_too_few_activations_are_zero():
    act = candidates.CandidateActivation(4, "overlap_target").train()
    act.target_zeros = 0.75
    h = torch.ones(8, 4)
    J = torch.full((8, 4), 0.01)  # on the ramp (tau 0, beta 50): every gate half open
    act(h, J)
    # no zero yet: the multiplier moves up by the step times the shortfall
    torch.testing.assert_close(act.multiplier, torch.tensor(candidates.DUAL_STEP * 0.75))
    act.training_penalty.backward()
    # the penalty's gradient pushes every threshold up (descent raises tau), nothing else
    assert (act.threshold.grad < 0).all()

    with torch.no_grad():
        act.multiplier.fill_(0.01)
    act(h, torch.zeros(8, 4))  # every gate shut: zeros 1 > 0.75, the multiplier falls to 0
    assert float(act.multiplier) == 0.0
    with torch.no_grad():
        act(h, J)  # no gradient (evaluation, serving): nothing moves
    assert float(act.multiplier) == 0.0


def test_targeted_gate_trains_to_more_zeros_than_it_finds_on_its_own(tmp_path):
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.synthetic import make_synthetic_catalog

    items = make_synthetic_catalog(n_items=600, seed=3).catalog.keywords
    zeros, multiplier = {}, {}
    for target in (0.0, 0.95):
        model = TopicModel(
            8,
            activation="overlap_target",
            target_zeros=target,
            max_epochs=25,
            min_df=2,
            batch_size=32,
        ).fit(items)
        assert model.projector_.activation.target_zeros == target
        zeros[target] = float((model.transform(items) == 0).mean())
        multiplier[target] = float(model.projector_.activation.multiplier)
    # Target 0: never binding (a ReLU's own zeros already exceed it), so no pressure at all,
    # and no L1 either (the default l1 is not applied to a targeted gate).
    assert multiplier[0.0] == 0.0
    # A binding target pushes the gates shut well beyond the natural share (0.66 here); it
    # lags the target, because the training batches hide keywords and the multiplier builds up.
    assert multiplier[0.95] > 0.5
    assert zeros[0.95] > zeros[0.0] + 0.1
    # saved and loaded: the same projections, the multiplier and the target kept
    model.save(tmp_path / "m")
    loaded = TopicModel.load(tmp_path / "m", device="cpu")
    assert float(loaded.projector_.activation.multiplier) == multiplier[0.95]
    assert loaded.target_zeros == 0.95
    np.testing.assert_array_equal(loaded.transform(items[:50]), model.transform(items[:50]))
