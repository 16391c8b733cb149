"""The tiny CPU training that the integration and writer tests share: data, model, one recorded
SGD step, Lightning validation step, Trainer flags and a small BERT."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# Lightning Trainer flags for a quiet single-process CPU run that writes no checkpoint
QUIET_CPU_TRAINER: dict[str, Any] = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "accelerator": "cpu",
    "devices": 1,
}


def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded 20-D points; the label is the largest of the first 4 coordinates."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 20, generator=gen)
    return x, x[:, :4].argmax(1)


def mlp(activation: type[nn.Module]) -> nn.Module:
    """A seeded 20-32-4 MLP."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), activation(), nn.Linear(32, 4))


def train_step(
    rec: Any,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    step: int,
) -> torch.Tensor:
    """Step ``step`` of a plain loop over ``x, y`` in batches of 32 (cycling): forward,
    cross-entropy, zero_grad, backward, optimizer step, ``rec.log(loss=...)``; the loss,
    detached."""
    i = (step * 32) % len(x)
    loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
    rec.log(loss=loss)
    return loss.detach()


def validation_step(module: Any, batch: Any, index: int) -> None:
    """A LightningModule's ``validation_step`` for ``module.net``: logs val_loss and val_acc."""
    xb, yb = batch
    logits = module.net(xb)
    module.log("val_loss", nn.functional.cross_entropy(logits, yb))
    module.log("val_acc", (logits.argmax(1) == yb).float().mean())


def tiny_bert(num_labels: int) -> Any:
    """A seeded 2-layer BERT classifier of width 32 over a vocabulary of 64."""
    import transformers

    config = transformers.BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    config.num_labels = num_labels  # the same config as passing it in; BertConfig's stub lacks it
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)
