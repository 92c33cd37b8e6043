"""The library's random state: one NumPy Generator behind init, dropout and shuffling.

``convkit.manual_seed(s)`` makes everything that draws from it repeatable,
like ``torch.manual_seed``. Its state is a plain dict (JSON-friendly), so a
checkpoint can save it and a resumed run continues the same random stream.
"""
from __future__ import annotations

import numpy as np

_GENERATOR = np.random.default_rng()


def manual_seed(seed):
    """Reseed the global generator; returns it."""
    global _GENERATOR
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be an int >= 0; got seed={seed!r}.")
    _GENERATOR = np.random.default_rng(int(seed))
    return _GENERATOR


def default_generator():
    """The global ``numpy.random.Generator`` (the one manual_seed resets)."""
    return _GENERATOR


def get_rng_state():
    """The global generator's state as a JSON-serialisable dict."""
    return _GENERATOR.bit_generator.state


def set_rng_state(state):
    """Restore a state from :func:`get_rng_state`."""
    _GENERATOR.bit_generator.state = state
