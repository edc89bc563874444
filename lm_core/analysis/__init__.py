"""Looking into a trained model: gradients through time (`bptt`, the Gradients page) and whether it writes
new ci (`evaluate`, python -m lm_core evaluate-lyrics)."""
