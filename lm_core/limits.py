"""The resource limits of the app and the CLI: what a visitor, a run or an owner may take.

The server is shared by a classroom, so everything a visitor can send is
bounded, and each bound is checked *before* the expensive step it protects
(reading, inflating, allocating a model). The UI states these numbers where
the user meets them (uploader help, error messages) and SECURITY.md's Limits
section repeats them. `server.maxUploadSize` in `.streamlit/config.toml` must
equal `MAX_UPLOAD_MB` (a test checks it).
"""

from __future__ import annotations

MAX_UPLOAD_MB = 20  # every uploader in the app; the server refuses larger requests outright
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 2**20

MAX_CORPUS_BYTES = MAX_UPLOAD_BYTES  # a corpus file, and the text inside a zip once inflated
MAX_VOCAB = 8_000  # distinct characters: the input and output layers grow with it
MAX_HIDDEN = 2_048  # hidden units: the recurrent weights grow with its square
MAX_LAYERS = 3  # stacked torch.nn layers
MAX_EMBED = 1_024  # embedding dimension (0 = one-hot input)
MAX_DROPOUT = 0.9  # dropout between layers; 1 would drop everything
# Weights of one model (4 bytes each). A model within MAX_VOCAB and MAX_HIDDEN can still exceed it
# (an LSTM at 8,000 × 2,048 has 99 M); with gradients and Adam's two moments a run holds about
# four copies, so one job stays under ~800 MB.
MAX_PARAMETERS = 50_000_000

# A checkpoint a visitor uploads is at most the upload size. What the server wrote itself (a worker's start
# and published checkpoints, the run store's copies) and what the operator reads (the CLI, shipped files) may
# be larger, up to what a model within MAX_PARAMETERS takes with Adam's two moments (plus slack).
MAX_CHECKPOINT_BYTES = MAX_UPLOAD_BYTES
MAX_OWN_CHECKPOINT_BYTES = 3 * 4 * MAX_PARAMETERS + 64 * 2**20
MAX_CLI_CHECKPOINT_BYTES = MAX_OWN_CHECKPOINT_BYTES

# Finished jobs kept in memory (their curves, samples and last weights), per browser (one per training
# page) and in total (a class of 40). Superseded runs go first, then the oldest.
MAX_FINISHED_PER_OWNER = 3
MAX_FINISHED_TOTAL = 40
# ... and the bytes their weights and optimiser states take, in total: by count alone, 40 of the largest models
# (MAX_PARAMETERS, with Adam's two moments: 600 MB each) would hold 24 GB. Past this, the oldest release their
# optimiser states first, then go (superseded and oldest first, as above).
MAX_FINISHED_BYTES = 2 * 2**30
# A finished job nobody has looked at for this long keeps its curves but drops its optimiser state
# (the published weights stay, so Generate and Hidden states can still use it; only Continue restarts
# the optimiser fresh, as for a checkpoint saved with --slim).
RELEASE_UNWATCHED_AFTER = 10 * 60.0

# torch threads a CLI command may ask for: more than any machine here has cores; a huge count (10^8) crashes torch.
MAX_THREADS = 256

# Per-step gradient norms a job keeps of each run (the Gradient clipping page's chart).
MAX_STEP_TRACE = 20_000
# The run store, per owner: finished runs beyond either bound are evicted, oldest first.
MAX_RUNS_PER_OWNER = 50
MAX_BYTES_PER_OWNER = 200 * 1024 * 1024  # checkpoint bytes

# Text that reaches a page. A checkpoint's corpus name and note (a file could carry megabytes); what a visitor
# types to trace through time on the Gradients page (every figure stays under a second at h = 256) and on the
# Hidden states page (the heatmap stays readable and the trace fast).
MAX_CHECKPOINT_TEXT = 500
MAX_GRADIENT_TEXT = 200
MAX_HIDDEN_TEXT = 300
