"""The one place that decides where tensors live.

CUDA when the machine has it, else the CPU. Everything else asks `DEVICE`.
"""

from __future__ import annotations

import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
