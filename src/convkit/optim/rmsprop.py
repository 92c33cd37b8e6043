"""RMSprop, torch.optim.RMSprop's rule exactly."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, addcmul_, blockwise, check_flag, check_real, effective_grad, lerp_


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), optionally centered and with momentum.

    Per parameter, with g its gradient::

        g <- -g                                   if maximize
        g <- g + weight_decay * p                 if weight_decay
        v <- alpha * v + (1 - alpha) * g * g
        a <- alpha * a + (1 - alpha) * g          if centered, and then v_hat = v - a * a, else v_hat = v
        s <- sqrt(v_hat) + eps
        b <- momentum * b + g / s; p <- p - lr * b    if momentum > 0
        p <- p - lr * g / s                           otherwise

    Parameters
    ----------
    params : iterable of Tensor or of param-group dicts
    lr : float, >= 0
    alpha : float, >= 0 (smoothing constant)
    eps : float, >= 0
    weight_decay : float, >= 0
    momentum : float, >= 0
    centered, maximize : bool

    State per parameter: ``"step"`` (int), ``"square_avg"``, ``"momentum_buffer"``
    (with momentum > 0) and ``"grad_avg"`` (centered).

    >>> import numpy as np, convkit
    >>> w = convkit.tensor(np.array([1.0]), requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01, alpha=0.75, eps=0.0)
    >>> w.grad = convkit.tensor(np.array([2.0]))
    >>> opt.step(); w.data    # 1 - 0.01 * 2 / sqrt(0.25 * 4)
    array([0.98])
    """

    _state_arrays = ("square_avg", "momentum_buffer", "grad_avg")
    _required_state = ("step", "square_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group, op):
        check_real(op, group, "lr", 0.0)
        check_real(op, group, "alpha", 0.0)
        check_real(op, group, "eps", 0.0)
        check_real(op, group, "weight_decay", 0.0)
        check_real(op, group, "momentum", 0.0)
        check_flag(op, group, "centered")
        check_flag(op, group, "maximize")

    def _update(self, x, g, state, group):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(x)
        # Made when first needed, so a schedule may switch momentum on later (OneCycleLR does).
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(x)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(x)
        state["step"] += 1

        wd, maximize, centered = group["weight_decay"], group["maximize"], group["centered"]

        def kernel(x, g, sq, ga, buf, tmp, out):
            d = effective_grad(x, g, wd, maximize)
            sq *= alpha
            addcmul_(sq, d, d, 1 - alpha, tmp)
            if centered:
                lerp_(ga, d, 1 - alpha, tmp)
                np.multiply(ga, ga, out=tmp)
                avg = np.subtract(sq, tmp, out=tmp)
                np.sqrt(avg, out=avg)
            else:
                avg = np.sqrt(sq, out=tmp)
            avg += eps
            if momentum > 0:
                buf *= momentum
                buf += np.divide(d, avg, out=avg)
                x -= np.multiply(buf, lr, out=avg)
            else:
                # torch's addcdiv_: p + (-lr * g) / avg, in that order
                upd = np.multiply(d, -lr, out=d if d is not g else out)
                upd /= avg
                x += upd

        blockwise(kernel, (x, g, state["square_avg"], state.get("grad_avg") if centered else None,
                           state.get("momentum_buffer") if momentum > 0 else None), scratch=2)
