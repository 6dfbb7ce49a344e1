"""Kim et al. (2016) character-aware language model: char CNN, highway layers, LSTM, word softmax.

Each word id is looked up in the ``word_chars`` buffer (char ids per word, 0 = padding);
its characters are embedded, convolved with filters of several widths (tanh),
max-pooled over time, passed through highway layers and fed to the LSTM trunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ban.core.errors import ConfigError, DataError
from ban.nets import register
from ban.nets.lstm import RecurrentLM, check_dropout, check_sizes

HIGHWAY_GATE_BIAS = -2.0  # Kim et al.: start the gates closed, carrying the input through


class Highway(nn.Module):
    """``t * relu(W_h y) + (1 - t) * y`` with the gate ``t = sigmoid(W_t y)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, inputs: Tensor) -> Tensor:
        gate = torch.sigmoid(self.gate(inputs))
        return gate * F.relu(self.transform(inputs)) + (1 - gate) * inputs


class CharCNNLanguageModel(RecurrentLM):
    """Word vectors computed from characters feed the LSTM trunk (no dropout on that first input)."""

    def __init__(
        self,
        vocab_size: int,
        word_chars: Tensor,
        char_embedding: int,
        filter_widths: Sequence[int],
        filters: Sequence[int],
        highway_layers: int,
        hidden: int,
        layers: int,
        dropout: float,
    ) -> None:
        super().__init__(sum(filters), vocab_size, hidden, layers, dropout)
        short = max(filter_widths) - word_chars.shape[1]  # every filter needs a full window
        self.register_buffer("word_chars", F.pad(word_chars, (0, max(short, 0))))
        self.char_embedding = nn.Embedding(int(word_chars.max()) + 1, char_embedding, padding_idx=0)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(char_embedding, count, width)
            for width, count in zip(filter_widths, filters, strict=True)
        )
        self.highways = nn.Sequential(*(Highway(sum(filters)) for _ in range(highway_layers)))

    def embed(self, tokens: Tensor) -> Tensor:
        chars = self.char_embedding(self.word_chars[tokens.flatten()]).transpose(1, 2)  # [B*T, E, L]
        pooled = [torch.tanh(conv(chars)).amax(dim=2) for conv in self.convolutions]
        return self.highways(torch.cat(pooled, dim=1)).view(*tokens.shape, -1)

    def init_uniform(self, scale: float) -> None:
        """Uniform weights, then the padding char at zero and the highway gates closed."""
        super().init_uniform(scale)
        with torch.no_grad():
            self.char_embedding.weight[0].zero_()
            for highway in self.highways:
                highway.gate.bias.fill_(HIGHWAY_GATE_BIAS)


@register("cnn_lstm", "lm")
def cnn_lstm(
    vocab_size: int,
    word_chars: Tensor,
    char_embedding: int = 15,
    filter_widths: Sequence[int] = (1, 2, 3, 4, 5, 6, 7),
    filters: Sequence[int] = (50, 100, 150, 200, 200, 200, 200),
    highway_layers: int = 2,
    hidden: int = 650,
    layers: int = 2,
    dropout: float = 0.5,
    init_scale: float = 0.05,
) -> CharCNNLanguageModel:
    """Defaults are Kim et al.'s large model (about 19M parameters on PTB)."""
    if word_chars.shape[0] != vocab_size:
        raise DataError(f"word_chars has {word_chars.shape[0]} rows for a vocabulary of {vocab_size} words")
    _check_char_cnn(filter_widths, filters, highway_layers)
    check_sizes(char_embedding=char_embedding, hidden=hidden, layers=layers)
    check_dropout(dropout)
    model = CharCNNLanguageModel(
        vocab_size,
        word_chars,
        char_embedding,
        filter_widths,
        filters,
        highway_layers,
        hidden,
        layers,
        dropout,
    )
    model.init_uniform(init_scale)
    return model


def _check_char_cnn(filter_widths: Sequence[int], filters: Sequence[int], highway_layers: int) -> None:
    if not filter_widths:
        raise ConfigError("model.filter_widths: give at least one width")
    if len(filters) != len(filter_widths):
        raise ConfigError(
            f"model.filters: {len(filters)} counts for {len(filter_widths)} model.filter_widths; "
            "give one count per width"
        )
    check_sizes(**{f"filter_widths[{i}]": width for i, width in enumerate(filter_widths)})
    check_sizes(**{f"filters[{i}]": count for i, count in enumerate(filters)})
    if highway_layers < 0:
        raise ConfigError(f"model.highway_layers: must be 0 or more, got {highway_layers}")
