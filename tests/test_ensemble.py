"""Ensembles average the members' distributions; Ens*k uses the first k members."""

from __future__ import annotations

import math

import pytest
import torch

from ban.core.config import params_from_mapping
from ban.core.errors import ConfigError
from ban.ensemble import average, running_ensembles
from ban.predictions import Predictions


def classifier(probs: list[list[float]], targets: list[int]) -> Predictions:
    p, y = torch.tensor(probs), torch.tensor(targets)
    return Predictions(p.gather(1, y[:, None]).squeeze(1), p.argmax(1), y, p)


def test_average_of_softmax_outputs_by_hand() -> None:
    a = classifier([[0.6, 0.4], [0.2, 0.8]], [0, 0])
    b = classifier([[0.2, 0.8], [0.7, 0.3]], [0, 0])
    ensemble = average([a, b])
    assert torch.allclose(ensemble.probs, torch.tensor([[0.4, 0.6], [0.45, 0.55]]))
    assert ensemble.argmax.tolist() == [1, 1]
    assert ensemble.error == 100.0
    assert ensemble.nll == pytest.approx(-(math.log(0.4) + math.log(0.45)) / 2)


def test_language_model_ensemble_averages_target_probabilities() -> None:
    targets = torch.tensor([3, 1])
    a = Predictions(torch.tensor([0.5, 0.1]), torch.tensor([3, 2]), targets, None)
    b = Predictions(torch.tensor([0.1, 0.3]), torch.tensor([3, 1]), targets, None)
    ensemble = average([a, b])
    assert torch.allclose(ensemble.target_prob, torch.tensor([0.3, 0.2]))
    assert ensemble.argmax is None and math.isnan(ensemble.error)
    assert math.exp(ensemble.nll) == pytest.approx(1 / math.sqrt(0.3 * 0.2))


def test_running_ensembles_take_members_in_order() -> None:
    members = {f"gen{i}": classifier([[i / 4, 1 - i / 4]], [0]) for i in (1, 2, 3)}
    ensembles = running_ensembles(members)
    assert list(ensembles) == ["ens2", "ens3"]
    assert ensembles["ens2"].probs[0, 0].item() == pytest.approx((0.25 + 0.5) / 2)
    assert ensembles["ens3"].probs[0, 0].item() == pytest.approx((0.25 + 0.5 + 0.75) / 3)


def test_members_must_share_targets() -> None:
    with pytest.raises(ValueError, match="different data"):
        average([classifier([[1.0, 0.0]], [0]), classifier([[1.0, 0.0]], [1])])


def test_default_members_are_the_main_chain_in_training_order_without_side_students() -> None:
    """``ensemble.members: null``: gen1, gen2, gen3 whatever order ``students`` is written in; the students
    that learn from gen0 beside the chain (BAN+L, CWTM, DKPP, control) are not members."""
    students = {"control": {"teacher": "gen0", "kd": {"mode": "none"}}, "gen3": {"teacher": "gen2"},
                "banl": {"teacher": "gen0", "kd": {"label_weight": 1.0}}, "gen1": {"teacher": "gen0"},
                "cwtm": {"teacher": "gen0", "kd": {"mode": "cwtm"}}, "gen2": {"teacher": "gen1"}}
    params = params_from_mapping({"students": students})
    assert params.ensemble_members() == ["gen1", "gen2", "gen3"]
    with_teacher = params_from_mapping({"students": students, "ensemble": {"include_teacher": True}})
    assert with_teacher.ensemble_members() == ["gen0", "gen1", "gen2", "gen3"]
    listed = params_from_mapping({"students": students, "ensemble": {"members": ["cwtm", "gen1"]}})
    assert listed.ensemble_members() == ["cwtm", "gen1"]


def test_default_members_need_a_chain() -> None:
    with pytest.raises(ConfigError, match=r"^ensemble.members: null stands for the chain gen1, gen2"):
        params_from_mapping({"students": {"banl": {"teacher": "gen0"}}})
