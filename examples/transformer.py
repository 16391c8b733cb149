"""A small transformer classifier over token sequences (embedding, self-attention, MLP).

    runlint gradcheck examples/transformer.py:make

Inputs are integer token ids; only floating tensors are cast to float64 for the check.
"""

from __future__ import annotations

import torch
from torch import nn

from runlint.pretrain.factory import Spec


class TinyTransformer(nn.Module):
    """Embedding + positional embedding, one encoder layer, mean pooling, linear head."""

    def __init__(self, vocab: int = 50, seq_len: int = 12, d_model: int = 32, classes: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        self.encoder = nn.TransformerEncoderLayer(
            d_model, nhead=4, dim_feedforward=64, dropout=0.1, activation="gelu", batch_first=True
        )
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(tokens) + self.pos)
        return self.head(h.mean(dim=1))


def make() -> Spec:
    """The class of a sequence is its most frequent token bucket (learnable, synthetic)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, 50, (24, 12), generator=gen)
    targets = (tokens % 5).mode(dim=1).values
    model = TinyTransformer()
    with torch.no_grad():
        model.head.weight.mul_(0.1)
        model.head.bias.zero_()
    return Spec(model=model, loss_fn=nn.CrossEntropyLoss(), inputs=tokens, targets=targets)
