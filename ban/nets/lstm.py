"""Zaremba et al. (2014) word-level LSTM language model, and the trunk it shares with the CNN-LSTM.

Both language-model families map word ids [B, T] and a recurrent state to logits
[B, T, vocab] and the next state; the engine carries the state across windows and
calls ``detach_state`` between them (truncated back-propagation through time).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ban.core.errors import ConfigError
from ban.nets import register

State = tuple[Tensor, Tensor]  # (h, c), each [layers, batch, hidden]


def detach_state(state: State) -> State:
    """Cut the graph behind the carried state so that gradients stop at the window start."""
    h, c = state
    return h.detach(), c.detach()


def check_sizes(**sizes: int) -> None:
    """Reject non-positive sizes, naming the option."""
    for key, value in sizes.items():
        if value < 1:
            raise ConfigError(f"model.{key}: must be a positive integer, got {value}")


def check_dropout(dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout: must lie in [0, 1), got {dropout}")


def fp32_recurrence(lstm: nn.LSTM, inputs: Tensor, state: State | None) -> tuple[Tensor, State]:
    """The LSTM in fp32 whatever autocast around it asks for; the layers around it keep autocast's dtype.

    On CUDA, autocast sends ``nn.LSTM`` through cuDNN's RNN wrapper, which casts to fp16 whatever
    dtype was asked for: a bf16 run would train the recurrence in fp16 without loss scaling, and carry
    an fp16 hidden state from window to window.
    """
    with torch.autocast(inputs.device.type, enabled=False):
        return lstm(inputs.float(), None if state is None else (state[0].float(), state[1].float()))


def autocast_recurrence(lstm: nn.LSTM, inputs: Tensor, state: State | None) -> tuple[Tensor, State]:
    """The LSTM in the precision autocast asks for (on the CPU, oneDNN's bf16 LSTM where it has one)."""
    return lstm(inputs, state)


def recurrence_for(device_type: str) -> Callable[[nn.LSTM, Tensor, State | None], tuple[Tensor, State]]:
    return fp32_recurrence if device_type == "cuda" else autocast_recurrence


class RecurrentLM(nn.Module):
    """Stacked LSTM over per-token input vectors, dropout between layers and before the softmax layer.

    Subclasses define ``embed`` (word ids [B, T] -> inputs [B, T, input_size]),
    including whatever dropout their recipe puts on the inputs.
    """

    def __init__(self, input_size: int, vocab_size: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        between_layers = dropout if layers > 1 else 0.0  # nn.LSTM warns about dropout after a single layer
        self.lstm = nn.LSTM(input_size, hidden, layers, batch_first=True, dropout=between_layers)
        self.decoder = nn.Linear(hidden, vocab_size)

    def embed(self, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits [B, T, vocab] for word ids [B, T]; ``state`` None starts from zeros.

        The softmax layer gets a 2-D input: a 3-D one under inference mode and bf16 autocast
        makes PyTorch copy the weight once per row of the batch (a second per window on a CPU).
        """
        outputs, new_state = recurrence_for(tokens.device.type)(self.lstm, self.embed(tokens), state)
        logits = self.decoder(self.drop(outputs).flatten(0, 1))
        return logits.view(*tokens.shape, -1), new_state

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def init_uniform(self, scale: float) -> None:
        """Every weight uniform in [-scale, scale], as in both papers' recipes."""
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -scale, scale)


class LSTMLanguageModel(RecurrentLM):
    """Word embeddings with dropout feeding the shared trunk; optionally tied to the softmax weights."""

    def __init__(
        self, vocab_size: int, hidden: int, layers: int, embedding: int, dropout: float, tie_weights: bool
    ) -> None:
        super().__init__(embedding, vocab_size, hidden, layers, dropout)
        self.encoder = nn.Embedding(vocab_size, embedding)
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def embed(self, tokens: Tensor) -> Tensor:
        return self.drop(self.encoder(tokens))


@register("lstm", "lm")
def lstm(
    vocab_size: int,
    hidden: int = 1500,
    layers: int = 2,
    embedding: int | None = None,
    dropout: float = 0.65,
    tie_weights: bool = True,
    init_scale: float = 0.04,
) -> LSTMLanguageModel:
    """Defaults are the paper's large model (2 x 1500, tied, dropout 0.65, Zaremba's init 0.04).

    ``embedding`` None means the same size as ``hidden``.
    """
    embedding = hidden if embedding is None else embedding
    check_sizes(hidden=hidden, layers=layers, embedding=embedding)
    check_dropout(dropout)
    if tie_weights and embedding != hidden:
        raise ConfigError(
            f"model.tie_weights: needs model.embedding ({embedding}) equal to model.hidden ({hidden})"
        )
    model = LSTMLanguageModel(vocab_size, hidden, layers, embedding, dropout, tie_weights)
    model.init_uniform(init_scale)
    return model
