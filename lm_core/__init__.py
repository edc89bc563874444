"""lm_core: the book's character-level RNN language models, without any UI.

Corpus loading, minibatch sampling, models (from scratch and torch.nn),
training as a stream of events, generation, checkpoints, a job manager for
background training, and the `python -m lm_core` CLI. No Streamlit here.
"""

__version__ = "0.1.0"
