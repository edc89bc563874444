#!/usr/bin/env bash
# The large-model speed and memory benchmark (prints numbers, asserts nothing; not part of run.sh).
# A 2-layer 512-unit LSTM with embedding on all of Song ci at 1 and 2 threads (each in its own process:
# torch's thread pool is fixed per process), then one lockstep epoch of the memorise-or-generalise preset.
# Each run also prints the corpus load + vocabulary time (target ≤ 2 s). Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
for threads in 1 2; do
  echo "== 2-layer LSTM 512, embed 256, all Song ci, threads $threads"
  python -m lm_core bench-large --model lstm --hidden 512 --layers 2 --embed 256 --steps-per-epoch 20 --threads "$threads"
done
echo "== memorise or generalise (the page's default), threads 1 as in an app job"
python -m lm_core bench-large --lesson --threads 1
