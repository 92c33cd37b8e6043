"""Pure NumPy convolution ops, each forward beside its gradient (vjp).

Arrays are channels first, (N, C, *spatial), or unbatched (C, *spatial).
Import as ``import convkit.functional as F``.
"""
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .padding import pad, pad_vjp

__all__ = [*_conv_all, "pad", "pad_vjp"]
from .unfold import *  # noqa: F401,F403,E402
from .unfold import __all__ as _unfold_all  # noqa: E402

__all__ += _unfold_all
from .pool import *  # noqa: F401,F403,E402
from .pool import __all__ as _pool_all  # noqa: E402

__all__ += _pool_all

from .activation import *  # noqa: F401,F403,E402
from .activation import __all__ as _activation_all  # noqa: E402
from .loss import *  # noqa: F401,F403,E402
from .loss import __all__ as _loss_all  # noqa: E402
from .norm import *  # noqa: F401,F403,E402
from .norm import __all__ as _norm_all  # noqa: E402
from .linear import *  # noqa: F401,F403,E402
from .linear import __all__ as _linear_all  # noqa: E402

__all__ += _activation_all + _loss_all + _norm_all + _linear_all

# Last: every public forward op accepts Tensors (see _dispatch); keep this at the end.
from ._dispatch import wrap_namespace  # noqa: E402

wrap_namespace(globals(), __all__)

# Not ops: how convolutions are computed (see _plan).
from ._plan import autotune, clear_plans, get_autotune, plans as conv_plans, set_autotune  # noqa: E402
from .conv import conv_algorithms  # noqa: E402,F811

__all__ += ["autotune", "clear_plans", "conv_algorithms", "conv_plans", "get_autotune", "set_autotune"]
