"""Noise for the twins' readings, drawn from numpy in blocks: one call per few thousand draws,
not one Python call per reading (a dry run reads the instruments thousands of times a second)."""
from collections.abc import Iterator

import numpy as np


def normals(rng: np.random.Generator) -> Iterator[float]:
    """Standard normal draws from `rng`, one per next()."""
    while True:
        yield from rng.standard_normal(4096).tolist()
