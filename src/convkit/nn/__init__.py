"""Layers with PyTorch's names, arguments, parameter shapes and initialisation.

>>> import convkit.nn as nn
>>> net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
>>> net(np.zeros((2, 1, 4, 4), np.float32)).shape
(2, 10)
"""
from . import init
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation_all
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout_all
from .flatten import *  # noqa: F401,F403
from .flatten import __all__ as _flatten_all
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _linear_all
from .module import IncompatibleKeys, Module, ModuleDict, ModuleList, Parameter, Sequential
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization_all
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling_all

__all__ = ["init", "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "IncompatibleKeys",
           *_conv_all, *_linear_all, *_normalization_all, *_activation_all, *_pooling_all, *_dropout_all,
           *_flatten_all]
