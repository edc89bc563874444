"""Benchmarks: they print numbers (and a ratio against a baseline measured in the same run), never assert.

`training_paths` (python -m lm_core bench), `gradient_figures` (bench-bptt), `large_model` (bench-large),
`run_memory` (bench-memory: the run-memory estimate against measured peaks),
`reference` (the book's own training procedure, also the fidelity tests' reference), and two of the job
server: `throughput` and `ray_vs_local` (python -m lm_core.bench.<name>).
"""
