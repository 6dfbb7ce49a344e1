"""Objectives checked against hand computations in plain Python on 2-3 samples."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from builders import softmax
from reference_losses import ban_loss, cross_entropy, cwtm_loss, cwtm_weights, dkpp_loss, soft_cross_entropy

from ban.core.config import KDConfig, params_from_mapping
from ban.core.errors import ConfigError
from ban.objectives import OBJECTIVES, Shard, StepInputs, check_kd, loss_terms
from ban.objectives.dkpp import dkpp_targets
from ban.objectives.functional import teacher_probs

MODES = ("ban", "cwtm", "dkpp", "none")

Z = [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]]
T = [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
Y = [1, 2]


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


def distillation_losses(mode: str, z: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None = None, *,
                        generator: torch.Generator | None = None, **kd: float) -> dict[str, torch.Tensor]:
    """The named loss terms the engine sums, for objective ``mode``."""
    return loss_terms(StepInputs(z, y, t, KDConfig(mode=mode, **kd), generator=generator))


def grad_nodes(loss: torch.Tensor, kind: str) -> int:
    """How many autograd nodes of ``kind`` (e.g. ``LogSoftmaxBackward0``) the loss's graph holds."""
    seen, pending = set(), [loss.grad_fn]
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        pending += [parent for parent, _ in node.next_functions]
    return sum(type(node).__name__ == kind for node in seen)


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


def test_every_objective_is_registered_with_what_it_needs() -> None:
    assert OBJECTIVES.names() == sorted(MODES)
    assert {o.name: o.needs_teacher for o in OBJECTIVES} == {"ban": True, "cwtm": True, "dkpp": True,
                                                             "none": False}
    z, t, y = tensors()
    with_labels = {mode: set(distillation_losses(mode, z, y, t, label_weight=0.5 if mode != "cwtm" else 0.0))
                   for mode in MODES}
    assert with_labels == {"ban": {"kd", "label"}, "dkpp": {"kd", "label"}, "cwtm": {"kd"}, "none": {"label"}}


def test_unknown_mode_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"^students\.gen2\.kd\.mode: unknown objective 'kl'") as raised:
        check_kd(KDConfig(mode="kl"), "students.gen2.kd")
    assert all(mode in str(raised.value) for mode in MODES)


def test_cwtm_refuses_a_label_weight() -> None:
    with pytest.raises(ConfigError, match=r"^kd\.label_weight: cwtm is already a weighted label loss"):
        check_kd(KDConfig(mode="cwtm", label_weight=1.0), "kd")
    check_kd(KDConfig(mode="ban", label_weight=1.0), "kd")


@pytest.mark.parametrize(("kd", "key"), [({"label_weight": -1.0}, "kd.label_weight"),
                                         ({"temperature": 0.0}, "kd.temperature")])
def test_invalid_settings_name_their_key(kd: dict[str, float], key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: must"):
        params_from_mapping({"kd": kd})


def test_ban_plus_label_computes_the_log_softmax_once_for_both_terms() -> None:
    """One log-softmax, one cross-entropy to p + w * onehot(y): the same loss and gradient as the two
    terms computed apart, and each term still logged on its own."""
    z, t, y = tensors()
    terms = distillation_losses("ban", z, y, t, label_weight=0.7)
    total = sum(terms.values())
    assert grad_nodes(total, "LogSoftmaxBackward0") == 1 and grad_nodes(total, "NllLossBackward0") == 0
    assert terms["kd"].item() == pytest.approx(hand_soft_ce(Z, T), rel=1e-6)
    assert terms["label"].item() == pytest.approx(0.7 * sum(hand_ce(Z, Y)) / 2, rel=1e-6)
    total.backward()
    apart = torch.tensor(Z, requires_grad=True)
    (ban_loss(apart, t) + 0.7 * cross_entropy(apart, y)).backward()
    torch.testing.assert_close(z.grad, apart.grad)


def hand_term_gradients(target: list[list[float]], temperature: float,
                        weight: float) -> dict[str, list[list[float]]]:
    """d/dz of each BAN+L term, by hand: ``kd`` = T^2 mean_s CE(softmax(z / T), target) gives
    T (softmax(z / T) - target) / N; ``label`` = w mean_s CE(softmax(z), y) gives
    w (softmax(z) - onehot(y)) / N."""
    n = len(Z)
    kd = [[temperature * (q - p) / n for q, p in zip(softmax(zs, temperature), ps, strict=True)]
          for zs, ps in zip(Z, target, strict=True)]
    label = [[weight * (q - (i == ys)) / n for i, q in enumerate(softmax(zs))]
             for zs, ys in zip(Z, Y, strict=True)]
    return {"kd": kd, "label": label}


@pytest.mark.parametrize("temperature", [1.0, 3.0], ids=["T=1 (one backward pass)", "T=3"])
@pytest.mark.parametrize("mode", ["ban", "dkpp"])
def test_each_ban_plus_label_term_carries_its_own_gradient(mode: str, temperature: float) -> None:
    """A caller that reweights or drops a term gets that term's gradient: each term alone, backpropagated,
    gives the hand-computed gradient of the term its name says."""
    t, y = torch.tensor(T), torch.tensor(Y)
    target = (teacher_probs(t, temperature) if mode == "ban"
              else dkpp_targets(t, torch.Generator().manual_seed(3), temperature)).tolist()
    expected = hand_term_gradients(target, temperature, weight=0.7)
    for name in ("kd", "label"):
        z = torch.tensor(Z, requires_grad=True)
        terms = distillation_losses(mode, z, y, t, generator=torch.Generator().manual_seed(3),
                                    label_weight=0.7, temperature=temperature)
        terms[name].backward()
        torch.testing.assert_close(z.grad, torch.tensor(expected[name]), rtol=1e-5, atol=1e-7, msg=name)


def test_the_summed_terms_at_t1_have_the_gradient_of_one_cross_entropy_to_p_plus_w_onehot() -> None:
    """The one-pass backward of BAN+L at T = 1 writes, for the training loss, exactly (bit for bit) the
    gradient of a single cross-entropy to ``p + w * onehot(y)``, on a batch large enough to round."""
    generator = torch.Generator().manual_seed(0)
    z = (torch.randn(64, 10, generator=generator) * 3).requires_grad_()
    t, y = torch.randn(64, 10, generator=generator) * 3, torch.randint(0, 10, (64,), generator=generator)
    sum(distillation_losses("ban", z, y, t, label_weight=0.7).values()).backward()
    apart = z.detach().clone().requires_grad_()
    goal = teacher_probs(t) + 0.7 * F.one_hot(y, 10)
    soft_cross_entropy(apart, goal).backward()
    assert torch.equal(z.grad, apart.grad)


def test_a_shard_draws_its_rows_of_the_global_batch() -> None:
    """DKPP on two processes permutes each example as one process does, whatever the split."""
    t = peaked_teacher(6, 5)
    whole = dkpp_targets(t, torch.Generator().manual_seed(4))
    for positions in (torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])):
        shard = Shard(global_size=6, positions=positions, world=2)
        part = dkpp_targets(t[positions], torch.Generator().manual_seed(4), shard=shard)
        torch.testing.assert_close(part, whole[positions])


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
