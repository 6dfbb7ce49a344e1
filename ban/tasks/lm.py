"""Word-level language modelling: perplexity, recurrent networks."""

from __future__ import annotations

import math

from ban.tasks import TASKS, Task

TASKS.register(Task(
    name="lm", metric="perplexity", value=lambda error, nll: math.exp(nll), lower_is_better=True,
    model_kind="a language model", data_kind="a text corpus",
    reports_agreement=False, ships_validation=True,
    prepared_tensors=("train", "valid", "test", "word_chars"), check_prepared=lambda meta, tensors: None,
    # recurrent layers are not counted on the meta device; their time steps run one after the other at
    # batch 20-32, so an H100 sustains about a tenth of what it does on CIFAR networks
    counts_flops=False, assumed_flops_per_s=10e12,
))
