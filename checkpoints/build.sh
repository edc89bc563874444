#!/usr/bin/env bash
# Rebuild the shipped checkpoints with the project's own CLI, on the bundled Song ci default
# (宋词 · 辛弃疾, first 10,000 characters, the book's preprocessing). One torch thread so the
# numbers do not depend on the machine's core count. About 5 minutes on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

# The book's from-scratch RNN with the book's settings (hidden 256, num_steps 35, batch 32, SGD lr 100,
# θ = 0.01), adjacent sampling, 250 epochs, seed 0.
python -m lm_core train --corpus songci --model scratch-rnn --sampling adjacent --epochs 250 --seed 0 \
  --threads 1 --quiet --print-every 50 --jsonl checkpoints/songci-scratch-rnn.jsonl --save checkpoints/songci-scratch-rnn.pt

# The book's concise GRU: torch.nn.GRU + Linear, Adam lr 1e-2, θ = 0.01, adjacent sampling, 160 epochs, seed 0.
# Saved without the Adam state (--slim) to keep the shipped files small; continuing it starts a fresh Adam.
python -m lm_core train --corpus songci --model gru --epochs 160 --seed 0 \
  --threads 1 --quiet --print-every 40 --slim --jsonl checkpoints/songci-gru.jsonl --save checkpoints/songci-gru.pt
