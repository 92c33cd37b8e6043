"""Stochastic gradient descent with momentum, torch.optim.SGD's rule exactly."""
from __future__ import annotations

import numpy as np

from .._checks import fail
from .optimizer import Optimizer, blockwise, check_flag, check_real, effective_grad


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    Per parameter, with g its gradient (t counts this parameter's steps)::

        g <- -g                      if maximize
        g <- g + weight_decay * p    if weight_decay
        b <- g                       at t = 1 (no dampening on the first step)
        b <- momentum * b + (1 - dampening) * g    afterwards
        g <- g + momentum * b        if nesterov, else g <- b   (only if momentum)
        p <- p - lr * g

    Parameters
    ----------
    params : iterable of Tensor or of param-group dicts
    lr : float, >= 0
    momentum : float, >= 0
    dampening : float
    weight_decay : float, >= 0 (L2 penalty added to the gradient)
    nesterov : bool, needs momentum > 0 and dampening == 0
    maximize : bool, ascend instead of descend

    State per parameter: ``"momentum_buffer"`` (only once a step has run with momentum != 0).

    >>> import numpy as np, convkit
    >>> w = convkit.tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> w.grad = convkit.tensor(np.array([1.0, -1.0]))
    >>> opt.step(); w.data
    array([0.9, 2.1])
    """

    _state_arrays = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group, op):
        check_real(op, group, "lr", 0.0)
        momentum = check_real(op, group, "momentum", 0.0)
        dampening = check_real(op, group, "dampening")
        check_real(op, group, "weight_decay", 0.0)
        if check_flag(op, group, "nesterov"):
            if momentum <= 0:
                fail(op, "momentum", "> 0 when nesterov=True", group["momentum"])
            if dampening != 0:
                fail(op, "dampening", "0 when nesterov=True", group["dampening"])
        check_flag(op, group, "maximize")

    def _update(self, x, g, state, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        wd, maximize, nesterov = group["weight_decay"], group["maximize"], group["nesterov"]
        first = momentum != 0 and state.get("momentum_buffer") is None
        if first:
            state["momentum_buffer"] = np.empty_like(x)

        def kernel(x, g, buf, tmp):
            d = effective_grad(x, g, wd, maximize)
            if momentum != 0:
                if first:
                    np.copyto(buf, d)
                else:
                    buf *= momentum
                    if dampening == 0:
                        buf += d
                    else:
                        buf += d * (1.0 - dampening)
                if nesterov:
                    d = np.add(d, buf * momentum, out=tmp if d is g else d)
                else:
                    d = buf
            step = np.multiply(d, lr, out=d if d is not g and d is not buf else tmp)
            x -= step

        blockwise(kernel, (x, g, state.get("momentum_buffer") if momentum != 0 else None), scratch=1)
