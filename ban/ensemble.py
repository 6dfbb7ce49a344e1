"""Born-again network ensembles (BANE): averages of the generations' output distributions.

Classifiers average their softmax outputs; language models average, per token,
the probability each member gives the next word (enough for perplexity, and
what averaging the full distributions yields for the true token).
"""

from __future__ import annotations

import torch

from ban.predictions import EnsemblePredictions, GenerationPredictions, Predictions
from ban.tasks import TASKS


def average(members: list[Predictions]) -> Predictions:
    """The ensemble of ``members``, all predictions on the same split."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    targets = members[0].targets
    for member in members[1:]:
        if not torch.equal(member.targets, targets):
            raise ValueError("ensemble members were evaluated on different data")
    target_prob = torch.stack([m.target_prob.double() for m in members]).mean(0).float()
    if all(m.probs is not None for m in members):
        probs = torch.stack([m.probs.double() for m in members]).mean(0).float()
        return Predictions(target_prob, probs.argmax(1), targets, probs)
    return Predictions(target_prob, None, targets, None)


def running_ensembles(members: dict[str, Predictions]) -> dict[str, Predictions]:
    """``ens{k}`` for k = 2..n: the average of the first k members, in generation order (Ens*k)."""
    names = list(members)
    return {f"ens{k}": average([members[n] for n in names[:k]]) for k in range(2, len(names) + 1)}


def ensemble_records(saved: dict[str, GenerationPredictions]) -> dict[str, EnsemblePredictions]:
    """Ens*k of the members' saved predictions (in order), on every split they were evaluated on."""
    members = list(saved)
    if not members:
        return {}
    first = saved[members[0]]
    task = TASKS.get(first.task, "task")
    records: dict[str, EnsemblePredictions] = {}
    for split in first.splits:
        per_member = {name: saved[name].splits[split] for name in members}
        for size, (name, predictions) in enumerate(running_ensembles(per_member).items(), start=2):
            record = records.setdefault(name, EnsemblePredictions(members[:size]))
            record.splits[split] = predictions
            record.metrics.update(task.split_metrics(split, predictions.error, predictions.nll))
    return records
