"""The book's from-scratch RNN procedure, kept as the reference implementation.

It follows the chapter step by step: inputs as a list of T one-hot matrices,
an output layer applied per time step, a Python-loop gradient norm, and
parameters updated by plain SGD. It is slow on purpose: the benchmark measures
the package's fast paths against it, and a test checks that both give the same
perplexity trajectory for the same seed. Written afresh from the chapter's
description; the app never trains with it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..models import init_normal
from ..sampling import batches


def to_onehot(X: torch.Tensor, n_class: int) -> list[torch.Tensor]:
    """(B, T) ids -> T matrices of shape (B, n_class), as the book does."""
    return [F.one_hot(X[:, t], n_class).float() for t in range(X.shape[1])]


def get_params(vocab_size: int, num_hiddens: int, gen: torch.Generator) -> list[torch.Tensor]:
    """W_xh, W_hh, b_h, W_hq, b_q drawn in the same order as the fast scratch RNN."""
    W_xh = init_normal((vocab_size, num_hiddens), gen)
    W_hh = init_normal((num_hiddens, num_hiddens), gen)
    b_h = torch.zeros(num_hiddens, requires_grad=True)
    W_hq = init_normal((num_hiddens, vocab_size), gen)
    b_q = torch.zeros(vocab_size, requires_grad=True)
    return [W_xh, W_hh, b_h, W_hq, b_q]


def rnn(inputs: list[torch.Tensor], H: torch.Tensor, params: list[torch.Tensor]):
    W_xh, W_hh, b_h, W_hq, b_q = params
    outputs = []
    for X in inputs:
        H = torch.tanh(torch.matmul(X, W_xh) + torch.matmul(H, W_hh) + b_h)
        outputs.append(torch.matmul(H, W_hq) + b_q)
    return outputs, H


def grad_clipping(params: list[torch.Tensor], theta: float) -> float:
    norm = torch.tensor([0.0])
    for p in params:
        norm += (p.grad.data**2).sum()
    norm = norm.sqrt().item()
    if norm > theta:
        for p in params:
            p.grad.data *= theta / norm
    return norm


def train_reference(
    ids: list[int],
    vocab_size: int,
    *,
    mode: str = "random",
    num_hiddens: int = 256,
    num_steps: int = 35,
    batch_size: int = 32,
    lr: float = 100.0,
    theta: float = 0.01,
    epochs: int = 250,
    seed: int = 0,
) -> Iterator[tuple[int, float, float]]:
    """Yield `(epoch, perplexity, seconds)` for each epoch of the book's loop."""
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    params = get_params(vocab_size, num_hiddens, gen)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        H = torch.zeros(batch_size, num_hiddens)
        l_sum, n = 0.0, 0
        for X, Y in batches(mode, ids, batch_size, num_steps, rng):
            if mode == "random":
                H = torch.zeros(batch_size, num_hiddens)
            else:
                H = H.detach()
            outputs, H = rnn(to_onehot(X, vocab_size), H, params)
            y = Y.T.flatten()
            loss = F.cross_entropy(torch.cat(outputs, dim=0), y)
            for p in params:
                p.grad = None
            loss.backward()
            grad_clipping(params, theta)
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
            l_sum += loss.item() * y.numel()
            n += y.numel()
        yield epoch, math.exp(l_sum / n), time.perf_counter() - start


def train_reference_concise(
    ids: list[int],
    vocab_size: int,
    *,
    kind: str = "rnn",
    num_hiddens: int = 256,
    num_steps: int = 35,
    batch_size: int = 32,
    lr: float = 1e-3,
    theta: float = 0.01,
    epochs: int = 250,
    seed: int = 0,
) -> Iterator[tuple[int, float, float]]:
    """The book's concise chapter: one-hot input into `torch.nn.RNN/GRU/LSTM`, a Linear
    layer over all steps, Adam, adjacent sampling with the state detached per minibatch.

    Unlike the widely copied port, clipping really happens and the state is reset
    every epoch (as the scratch chapter does). Yields `(epoch, perplexity, seconds)`.
    """
    layer_cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = layer_cls(vocab_size, num_hiddens)
        dense = torch.nn.Linear(num_hiddens, vocab_size)
    params = [*layer.parameters(), *dense.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    rng = random.Random(seed)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        state = None
        l_sum, n = 0.0, 0
        for X, Y in batches("adjacent", ids, batch_size, num_steps, rng):
            if state is not None:
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            hiddens, state = layer(torch.stack(to_onehot(X, vocab_size)), state)
            output = dense(hiddens.reshape(-1, num_hiddens))
            y = Y.T.flatten()
            loss = F.cross_entropy(output, y)
            optimizer.zero_grad()
            loss.backward()
            grad_clipping(params, theta)
            optimizer.step()
            l_sum += loss.item() * y.numel()
            n += y.numel()
        yield epoch, math.exp(l_sum / n), time.perf_counter() - start
