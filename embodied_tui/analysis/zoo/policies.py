"""Small control policies of the kind an embodied-AI team ships: recurrent (LSTM, GRU) and feed-forward (MLP).

Inputs are observation vectors: ``(batch, T, obs_dim)`` for the recurrent ones, ``(batch, obs_dim)`` for the MLP.
Outputs are raw action values (means or logits) per step: ``(batch, T, act_dim)`` / ``(batch, act_dim)``.
"""
from __future__ import annotations

from torch import Tensor, nn


class RecurrentPolicy(nn.Module):
    """obs -> ``rnn`` (LSTM or GRU, batch_first) -> ``head`` (Linear -> Tanh -> Linear) per step."""

    def __init__(self, cell: str = "lstm", obs_dim: int = 32, hidden: int = 128, act_dim: int = 8,
                 num_layers: int = 1) -> None:
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell)
        if rnn_cls is None:
            raise ValueError(f"unknown recurrent cell {cell!r}: use 'lstm' or 'gru'")
        self.rnn = rnn_cls(obs_dim, hidden, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, act_dim))

    def forward(self, obs: Tensor) -> Tensor:
        features, _ = self.rnn(obs)
        return self.head(features)


class MLPPolicy(nn.Module):
    """obs -> Linear -> Tanh -> Linear -> Tanh -> Linear (the usual PPO actor)."""

    def __init__(self, obs_dim: int = 32, hidden: int = 256, act_dim: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, act_dim))

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)


def lstm_policy(obs_dim: int = 32, hidden: int = 128, act_dim: int = 8) -> RecurrentPolicy:
    return RecurrentPolicy("lstm", obs_dim, hidden, act_dim)


def gru_policy(obs_dim: int = 32, hidden: int = 128, act_dim: int = 8) -> RecurrentPolicy:
    return RecurrentPolicy("gru", obs_dim, hidden, act_dim)


def mlp_policy(obs_dim: int = 32, hidden: int = 256, act_dim: int = 8) -> MLPPolicy:
    return MLPPolicy(obs_dim, hidden, act_dim)
