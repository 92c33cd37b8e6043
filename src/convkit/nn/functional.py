"""``convkit.nn.functional`` is :mod:`convkit.functional` (PyTorch users import F from here)."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
