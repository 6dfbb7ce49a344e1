"""Gradient decomposition checked against plain-Python computations on two samples."""

from __future__ import annotations

import math

import pytest
import torch
from builders import softmax

from ban.training.analysis import gradient_decomposition

Z = [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]]
T = [[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]]
Y = [1, 2]


Q = [softmax(row) for row in Z]
P = [softmax(row) for row in T]


def decompose() -> dict[str, torch.Tensor]:
    return gradient_decomposition(torch.tensor(Z, requires_grad=True), torch.tensor(T), torch.tensor(Y))


def test_true_class_gradient_is_mean_absolute_true_coordinate() -> None:
    hand = (abs(Q[0][1] - P[0][1]) + abs(Q[1][2] - P[1][2])) / 2
    assert decompose()["true_class_grad"].item() == pytest.approx(hand, rel=1e-6)


def test_dark_knowledge_gradient_is_mean_l2_norm_of_other_coordinates() -> None:
    first = math.hypot(Q[0][0] - P[0][0], Q[0][2] - P[0][2])
    second = math.hypot(Q[1][0] - P[1][0], Q[1][1] - P[1][1])
    assert decompose()["dark_knowledge_grad"].item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_teacher_probabilities() -> None:
    values = decompose()
    assert values["teacher_true_prob"].item() == pytest.approx((P[0][1] + P[1][2]) / 2, rel=1e-6)
    assert values["teacher_max_prob"].item() == pytest.approx((P[0][0] + P[1][1]) / 2, rel=1e-6)


def test_cwtm_weight_std_is_population_std_of_scaled_weights() -> None:
    confidence = [P[0][0], P[1][1]]
    scaled = [2 * c / sum(confidence) for c in confidence]
    hand = abs(scaled[0] - scaled[1]) / 2
    assert decompose()["cwtm_weight_std"].item() == pytest.approx(hand, rel=1e-5)


def test_values_are_detached_scalars() -> None:
    for value in decompose().values():
        assert value.shape == ()
        assert not value.requires_grad
        assert value.dtype == torch.float32


def test_equal_confidence_gives_zero_weight_spread_and_single_sample_is_finite() -> None:
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    values = gradient_decomposition(torch.zeros(2, 3), t, torch.tensor([0, 1]))
    assert values["cwtm_weight_std"].item() == pytest.approx(0.0, abs=1e-7)
    single = gradient_decomposition(torch.zeros(1, 3), t[:1], torch.tensor([0]))
    assert single["cwtm_weight_std"].item() == 0.0
