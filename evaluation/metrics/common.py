"""Shared types of the evaluation metrics."""

from __future__ import annotations

import numpy as np

Array = np.ndarray
