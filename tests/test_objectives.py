"""Objectives checked against hand computations in plain Python on 2-3 samples."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ban.errors import ConfigError
from ban.objectives import (
    MODES,
    ban_loss,
    cross_entropy,
    cwtm_loss,
    cwtm_weights,
    distillation_losses,
    dkpp_loss,
    dkpp_targets,
    soft_cross_entropy,
)

Z = [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]]
T = [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
Y = [1, 2]


def softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    exps = [math.exp(v / temperature) for v in row]
    return [e / sum(exps) for e in exps]


def row_ce(p: list[float], q: list[float]) -> float:
    """-sum_i p_i log q_i for one sample."""
    return -sum(pi * math.log(qi) for pi, qi in zip(p, q, strict=True))


def hand_soft_ce(z: list[list[float]], t: list[list[float]], temperature: float = 1.0) -> float:
    """T^2 * mean over samples of -sum_i p_i log q_i."""
    per_sample = [
        row_ce(softmax(ts, temperature), softmax(zs, temperature)) for zs, ts in zip(z, t, strict=True)
    ]
    return temperature**2 * sum(per_sample) / len(per_sample)


def hand_ce(z: list[list[float]], y: list[int]) -> list[float]:
    return [-math.log(softmax(zs)[ys]) for zs, ys in zip(z, y, strict=True)]


def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.tensor(Z, requires_grad=True), torch.tensor(T), torch.tensor(Y)


def test_ban_loss_is_cross_entropy_to_teacher_distribution() -> None:
    z, t, _ = tensors()
    assert ban_loss(z, t).item() == pytest.approx(hand_soft_ce(Z, T), rel=1e-6)


def test_ban_gradient_is_q_minus_p_over_batch() -> None:
    z, t, _ = tensors()
    ban_loss(z, t).backward()
    q, p = [softmax(zs) for zs in Z], [softmax(ts) for ts in T]
    expected = [[(qi - pi) / 2 for qi, pi in zip(qs, ps, strict=True)] for qs, ps in zip(q, p, strict=True)]
    torch.testing.assert_close(z.grad, torch.tensor(expected))


def test_ban_equals_batchmean_kl_plus_teacher_entropy() -> None:
    z, t, _ = tensors()
    p, q = [softmax(ts) for ts in T], [softmax(zs) for zs in Z]
    entropy = sum(row_ce(ps, ps) for ps in p) / 2
    kl = sum(row_ce(ps, qs) - row_ce(ps, ps) for ps, qs in zip(p, q, strict=True)) / 2
    assert ban_loss(z, t).item() == pytest.approx(kl + entropy, rel=1e-6)


def test_temperature_two_scales_by_four_and_softens_both_sides() -> None:
    z, t, _ = tensors()
    halved_t = [[v / 2 for v in ts] for ts in T]
    halved_z = [[v / 2 for v in zs] for zs in Z]
    hand = 4.0 * hand_soft_ce(halved_z, halved_t)
    assert ban_loss(z, t, temperature=2.0).item() == pytest.approx(hand, rel=1e-6)
    assert hand != pytest.approx(hand_soft_ce(Z, T), rel=1e-3)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def test_reduction_is_over_samples_not_samples_times_classes() -> None:
    z, t, _ = tensors()
    p = F.softmax(t, dim=1)
    entropy = -(p * p.log()).sum(dim=1).mean()
    kl_batch_mean = ban_loss(z, t) - entropy
    kl_default = torch.nn.KLDivLoss()(F.log_softmax(z, dim=1), p)
    assert kl_batch_mean.item() == pytest.approx(3 * kl_default.item(), rel=1e-5)
    assert kl_batch_mean.item() != pytest.approx(kl_default.item(), rel=1e-2)


def test_soft_cross_entropy_with_one_hot_target_is_label_cross_entropy() -> None:
    z, _, y = tensors()
    one_hot = F.one_hot(y, 3).float()
    ce = hand_ce(Z, Y)
    assert soft_cross_entropy(z, one_hot).item() == pytest.approx(sum(ce) / 2, rel=1e-6)
    assert cross_entropy(z, y).item() == pytest.approx(sum(ce) / 2, rel=1e-6)


def test_cwtm_weights_sum_to_one_and_follow_teacher_confidence() -> None:
    t = torch.tensor([[0.0, 1.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    weights = cwtm_weights(t)
    confidence = [max(softmax(ts)) for ts in t.tolist()]
    hand = [c / sum(confidence) for c in confidence]
    torch.testing.assert_close(weights, torch.tensor(hand))
    assert weights.sum().item() == pytest.approx(1.0)
    assert weights.argsort().tolist() == [2, 0, 1]
    assert not weights.requires_grad


def test_cwtm_loss_is_hand_weighted_sum_of_cross_entropies() -> None:
    z, t, y = tensors()
    t.requires_grad_(True)
    confidence = [max(softmax(ts)) for ts in T]
    hand = sum(c / sum(confidence) * ce for c, ce in zip(confidence, hand_ce(Z, Y), strict=True))
    loss = cwtm_loss(z, t, y)
    assert loss.item() == pytest.approx(hand, rel=1e-6)
    loss.backward()
    assert t.grad is None


def peaked_teacher(n: int, c: int) -> torch.Tensor:
    """Distinct logits per row (no ties) with the argmax at a different class per row."""
    base = torch.arange(c, dtype=torch.float32) * 0.7
    return torch.stack([base.roll(shift) for shift in range(n)])


def test_dkpp_keeps_argmax_and_permutes_the_rest() -> None:
    t = peaked_teacher(6, 5)
    p = F.softmax(t, dim=1)
    target = dkpp_targets(t, torch.Generator().manual_seed(0))
    argmax = p.argmax(dim=1)
    torch.testing.assert_close(target.argmax(dim=1), argmax)
    torch.testing.assert_close(target.gather(1, argmax[:, None]), p.gather(1, argmax[:, None]))
    torch.testing.assert_close(target.sort(dim=1).values, p.sort(dim=1).values)
    assert not torch.allclose(target, p)


def test_dkpp_is_reproducible_per_seed() -> None:
    t = peaked_teacher(6, 5)
    first = dkpp_targets(t, torch.Generator().manual_seed(1))
    again = dkpp_targets(t, torch.Generator().manual_seed(1))
    other = dkpp_targets(t, torch.Generator().manual_seed(2))
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)


def test_dkpp_draws_a_fresh_permutation_per_sample() -> None:
    t = torch.tensor([[3.0, 0.0, 1.0, 2.0, -1.0, 0.5]]).expand(8, 6)
    target = dkpp_targets(t, torch.Generator().manual_seed(0))
    assert len({tuple(row) for row in target.tolist()}) > 1


def test_dkpp_temperature_permutes_the_softened_distribution() -> None:
    t = peaked_teacher(4, 4)
    target = dkpp_targets(t, torch.Generator().manual_seed(0), temperature=3.0)
    soft = F.softmax(t / 3.0, dim=1)
    torch.testing.assert_close(target.sort(dim=1).values, soft.sort(dim=1).values)


def test_dkpp_loss_is_cross_entropy_to_the_permuted_target() -> None:
    z = torch.tensor([[0.1, 0.2, -0.3, 1.0], [1.0, 0.0, 0.5, -0.5]])
    t = peaked_teacher(2, 4)
    target = dkpp_targets(t, torch.Generator().manual_seed(3)).tolist()
    hand = sum(row_ce(ps, softmax(zs)) for ps, zs in zip(target, z.tolist(), strict=True)) / 2
    assert dkpp_loss(z, t, torch.Generator().manual_seed(3)).item() == pytest.approx(hand, rel=1e-6)


def test_none_ignores_the_teacher() -> None:
    z, t, y = tensors()
    hand = sum(hand_ce(Z, Y)) / 2
    without = distillation_losses("none", z, y)
    with_teacher = distillation_losses("none", z, y, t, label_weight=0.5, temperature=4.0)
    assert set(without) == {"label"}
    assert without["label"].item() == pytest.approx(hand, rel=1e-6)
    assert with_teacher["label"].item() == pytest.approx(hand, rel=1e-6)


def test_ban_plus_label_adds_exactly_weighted_cross_entropy() -> None:
    z, t, y = tensors()
    terms = distillation_losses("ban", z, y, t, label_weight=0.3)
    assert set(terms) == {"kd", "label"}
    assert terms["kd"].item() == pytest.approx(hand_soft_ce(Z, T), rel=1e-6)
    assert terms["label"].item() == pytest.approx(0.3 * sum(hand_ce(Z, Y)) / 2, rel=1e-6)
    assert set(distillation_losses("ban", z, y, t)) == {"kd"}


def test_entry_point_routes_each_teacher_mode() -> None:
    z, t, y = tensors()
    ban = distillation_losses("ban", z, y, t, temperature=2.0)["kd"]
    assert ban.item() == pytest.approx(hand_soft_ce(Z, T, 2.0), rel=1e-6)
    cwtm = distillation_losses("cwtm", z, y, t)["kd"]
    assert cwtm.item() == pytest.approx(cwtm_loss(z, t, y).item(), rel=1e-6)
    dkpp = distillation_losses("dkpp", z, y, t, generator=torch.Generator().manual_seed(5))["kd"]
    assert dkpp.item() == pytest.approx(dkpp_loss(z, t, torch.Generator().manual_seed(5)).item(), rel=1e-6)


def test_unknown_mode_names_the_key_and_the_choices() -> None:
    z, t, y = tensors()
    with pytest.raises(ConfigError, match="kd.mode") as raised:
        distillation_losses("kl", z, y, t)
    assert all(mode in str(raised.value) for mode in MODES)


@pytest.mark.parametrize(
    ("mode", "kwargs", "key"),
    [
        ("cwtm", {"label_weight": 1.0}, "kd.label_weight"),
        ("ban", {"label_weight": -1.0}, "kd.label_weight"),
        ("ban", {"temperature": 0.0}, "kd.temperature"),
    ],
)
def test_invalid_settings_name_their_key(mode: str, kwargs: dict[str, float], key: str) -> None:
    z, t, y = tensors()
    with pytest.raises(ConfigError, match=key):
        distillation_losses(mode, z, y, t, **kwargs)


@pytest.mark.parametrize("mode", ["ban", "cwtm", "dkpp"])
def test_teacher_modes_need_teacher_logits(mode: str) -> None:
    z, _, y = tensors()
    with pytest.raises(ValueError, match=mode):
        distillation_losses(mode, z, y)


@pytest.mark.parametrize("mode", MODES)
def test_bf16_logits_give_float32_losses(mode: str) -> None:
    z, t, y = tensors()
    label_weight = 0.0 if mode == "cwtm" else 1.0
    terms = distillation_losses(mode, z.bfloat16(), y, t.bfloat16(), label_weight=label_weight)
    assert all(term.dtype == torch.float32 for term in terms.values())
