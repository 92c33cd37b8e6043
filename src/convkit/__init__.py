"""convkit: convolutional networks on NumPy that are exact, fast and show their work.

>>> import numpy as np, convkit.functional as F
>>> F.conv(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3))).shape
(1, 2, 3, 3)
"""
from . import functional, layout, shapes
from ._config import (alloc_limit, get_alloc_limit, get_workspace_limit, set_alloc_limit, set_workspace_limit,
                      workspace_limit)
from ._parallel import num_threads, set_num_threads
from ._scratch import release_memory
from ._random import default_generator, get_rng_state, manual_seed, set_rng_state
from .autograd import *  # noqa: F403,A004 - Tensor, tensor, no_grad and the Tensor ops (exp, cat, ...)
from .autograd import __all__ as _autograd_all

__version__ = "0.1.0"
_SUBPACKAGES = ("nn", "optim", "data", "models", "train")


def __getattr__(name):  # convkit.nn, convkit.optim, ... import on first use
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'convkit' has no attribute {name!r}")
__all__ = ["functional", "shapes", "layout", "get_workspace_limit", "set_workspace_limit", "workspace_limit",
           "get_alloc_limit", "set_alloc_limit", "alloc_limit",
           "num_threads", "set_num_threads", "release_memory", "manual_seed", "default_generator", "get_rng_state",
           "set_rng_state",
           *_autograd_all, "__version__"]
