"""Language models: shapes, state carrying, weight tying, options and the paper's parameter counts."""

from __future__ import annotations

import pytest
import torch
from project import ROOT

from ban.core.errors import ConfigError, DataError
from ban.nets import build_model, count_parameters, get_architecture
from ban.nets.lstm import autocast_recurrence, detach_state, fp32_recurrence, recurrence_for

VOCAB = 12
TINY = {
    "lstm": {"hidden": 8, "layers": 2, "embedding": 8, "dropout": 0.5},
    "cnn_lstm": {
        "char_embedding": 3,
        "filter_widths": [1, 2, 3],
        "filters": [2, 3, 4],
        "highway_layers": 2,
        "hidden": 8,
        "layers": 2,
        "dropout": 0.5,
    },
}


def tiny_word_chars(width: int = 5) -> torch.Tensor:
    """Distinct spellings [BOW, c, c', EOW, pad...] over 9 char ids."""
    torch.manual_seed(1)
    rows = torch.zeros(VOCAB, width, dtype=torch.int64)
    rows[:, 0], rows[:, 3] = 1, 2
    rows[:, 1:3] = torch.randint(3, 9, (VOCAB, 2))
    return rows


def tiny_recurrent_net(arch: str, **options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(arch, {**TINY[arch], **options}, vocab_size=VOCAB, word_chars=tiny_word_chars())


@pytest.mark.parametrize("arch", ["lstm", "cnn_lstm"])
def test_forward_shapes_and_initial_state(arch: str) -> None:
    model = tiny_recurrent_net(arch).eval()
    tokens = torch.randint(0, VOCAB, (3, 5))
    state = model.initial_state(3, "cpu")
    assert [tuple(t.shape) for t in state] == [(2, 3, 8), (2, 3, 8)]
    assert all(torch.count_nonzero(t) == 0 for t in state)
    logits, (h, c) = model(tokens, state)
    assert logits.shape == (3, 5, VOCAB) and h.shape == c.shape == (2, 3, 8)
    assert torch.equal(model(tokens)[0], logits)  # no state = zero state


@pytest.mark.parametrize("arch", ["lstm", "cnn_lstm"])
def test_carried_state_equals_whole_sequence(arch: str) -> None:
    model = tiny_recurrent_net(arch).eval()
    tokens = torch.randint(0, VOCAB, (2, 10))
    whole, whole_state = model(tokens, model.initial_state(2))
    first, state = model(tokens[:, :6], model.initial_state(2))
    second, final_state = model(tokens[:, 6:], detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(final_state, whole_state, rtol=0, atol=1e-6)


def test_detach_state_cuts_graph_keeps_values() -> None:
    model = tiny_recurrent_net("lstm").train()
    _, state = model(torch.randint(0, VOCAB, (2, 4)))
    detached = detach_state(state)
    assert all(t.requires_grad for t in state) and not any(t.requires_grad for t in detached)
    assert all(torch.equal(a, b) for a, b in zip(state, detached, strict=True))


@pytest.mark.parametrize("arch", ["lstm", "cnn_lstm"])
def test_dropout_only_in_training(arch: str) -> None:
    model = tiny_recurrent_net(arch)
    tokens = torch.randint(0, VOCAB, (2, 4))
    model.eval()
    assert torch.equal(model(tokens)[0], model(tokens)[0])
    model.train()
    assert not torch.equal(model(tokens)[0], model(tokens)[0])


def test_the_recurrence_runs_in_fp32_under_autocast_and_the_layers_after_it_do_not() -> None:
    """CUDA's autocast would run ``nn.LSTM`` in fp16 whatever dtype it was asked for, so there the
    recurrence leaves autocast; checked with CPU autocast: fp32 outputs and state from bf16 inputs and
    state, the values of a plain fp32 LSTM, and a layer after it still in bf16."""
    torch.manual_seed(0)
    lstm, decoder = torch.nn.LSTM(8, 8, 2, batch_first=True), torch.nn.Linear(8, 4)
    inputs = torch.randn(3, 5, 8).bfloat16()
    state = (torch.randn(2, 3, 8).bfloat16(), torch.randn(2, 3, 8).bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, (h, c) = fp32_recurrence(lstm, inputs, state)
        logits = decoder(outputs)
    assert outputs.dtype == h.dtype == c.dtype == torch.float32 and logits.dtype == torch.bfloat16
    expected, (expected_h, _) = lstm(inputs.float(), (state[0].float(), state[1].float()))
    assert torch.equal(outputs, expected) and torch.equal(h, expected_h)


def test_cuda_takes_the_recurrence_out_of_autocast() -> None:
    """On the CPU autocast runs the LSTM in the bf16 it was asked for (oneDNN, where the CPU has it)."""
    assert recurrence_for("cuda") is fp32_recurrence
    assert recurrence_for("cpu") is autocast_recurrence


def test_tie_weights_shares_parameter() -> None:
    tied, untied = tiny_recurrent_net("lstm", tie_weights=True), tiny_recurrent_net("lstm", tie_weights=False)
    assert tied.decoder.weight is tied.encoder.weight
    assert untied.decoder.weight is not untied.encoder.weight
    assert count_parameters(untied) - count_parameters(tied) == VOCAB * 8


def test_tie_weights_needs_equal_sizes() -> None:
    message = r"^model\.tie_weights: needs model\.embedding \(6\) equal to model\.hidden \(8\)$"
    with pytest.raises(ConfigError, match=message):
        tiny_recurrent_net("lstm", embedding=6)
    assert tiny_recurrent_net("lstm", embedding=6, tie_weights=False).encoder.weight.shape == (VOCAB, 6)


def test_uniform_init_within_scale() -> None:
    model = tiny_recurrent_net("lstm", init_scale=0.01)
    assert max(p.abs().max().item() for p in model.parameters()) <= 0.01


def test_char_model_init_and_short_words() -> None:
    model = tiny_recurrent_net("cnn_lstm")
    assert torch.count_nonzero(model.char_embedding.weight[0]) == 0  # padding embeds to zero
    assert model.char_embedding.weight.shape == (9, 3)
    assert all(torch.equal(h.gate.bias, torch.full((9,), -2.0)) for h in model.highways)
    wide = build_model(
        "cnn_lstm",
        {**TINY["cnn_lstm"], "filter_widths": [1, 7], "filters": [2, 3]},
        vocab_size=VOCAB,
        word_chars=tiny_word_chars(),
    )
    assert wide.word_chars.shape == (VOCAB, 7)  # padded so that the widest filter fits
    assert torch.equal(wide.word_chars[:, :5], tiny_word_chars())
    assert wide(torch.zeros(1, 2, dtype=torch.int64))[0].shape == (1, 2, VOCAB)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"filters": [2, 3]},
            r"^model\.filters: 2 counts for 3 model\.filter_widths; give one count per width$",
        ),
        ({"filter_widths": [], "filters": []}, r"^model\.filter_widths: give at least one width$"),
        ({"filters": [2, 0, 4]}, r"^model\.filters\[1\]: must be a positive integer, got 0$"),
        ({"highway_layers": -1}, r"^model\.highway_layers: must be 0 or more, got -1$"),
        ({"dropout": 1.0}, r"^model\.dropout: must lie in \[0, 1\), got 1\.0$"),
        ({"hidden": 0}, r"^model\.hidden: must be a positive integer, got 0$"),
    ],
)
def test_cnn_lstm_bad_options(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_recurrent_net("cnn_lstm", **options)


def test_cnn_lstm_word_chars_must_match_vocab() -> None:
    with pytest.raises(DataError, match=r"^word_chars has 12 rows for a vocabulary of 13 words$"):
        build_model("cnn_lstm", TINY["cnn_lstm"], vocab_size=13, word_chars=tiny_word_chars())


def test_registry_entries() -> None:
    assert get_architecture("lstm").task == get_architecture("cnn_lstm").task == "lm"
    trunk = {"hidden", "layers", "dropout", "init_scale"}
    assert get_architecture("lstm").option_names() == trunk | {"embedding", "tie_weights"}
    char_cnn = {"char_embedding", "filter_widths", "filters", "highway_layers"}
    assert get_architecture("cnn_lstm").option_names() == trunk | char_cnn


def test_zaremba_large_parameter_count() -> None:
    """2 x 1500, vocab 10000: the paper's ~52M with tied embeddings (nn.LSTM keeps two bias vectors)."""
    with torch.device("meta"):
        tied = count_parameters(build_model("lstm", {}, vocab_size=10000))
        untied = count_parameters(build_model("lstm", {"tie_weights": False}, vocab_size=10000))
    assert tied == 51_034_000
    assert "51,034,000" in (ROOT / "docs/architectures.md").read_text()  # the Networks page
    assert abs(tied - 52e6) / 52e6 < 0.02
    assert untied == 66_034_000  # Zaremba et al.'s untied large model: 66M


def test_kim_large_parameter_count() -> None:
    """Kim et al.'s large PTB model: 51 char symbols, words up to 19 letters; their table says 19M."""
    word_chars = torch.zeros(10000, 21, dtype=torch.int64)
    word_chars[0, 0] = 50
    with torch.device("meta"):
        count = count_parameters(build_model("cnn_lstm", {}, vocab_size=10000, word_chars=word_chars))
    assert count == 19_373_165
    assert "19,373,165" in (ROOT / "docs/architectures.md").read_text()  # the Networks page
    assert abs(count - 19e6) / 19e6 < 0.03
