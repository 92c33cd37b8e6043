"""Learning-rate schedules, torch.optim.lr_scheduler's, value for value.

A scheduler changes ``group["lr"]`` of its optimizer's groups; call
``scheduler.step()`` after ``optimizer.step()``. Construction records
``group["initial_lr"]`` (the base lr) and performs step 0. The formulas are
torch's own, including its recursive ("chainable") forms, so the same
sequence of steps gives the same floats.

>>> import numpy as np, convkit
>>> from convkit.optim import SGD
>>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for _ in range(5):
...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
>>> lrs
[1.0, 0.5, 0.5, 0.25, 0.25]

state_dict() holds plain types only (lists, not tuples or Counters), so a
checkpoint can store it as JSON.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from itertools import pairwise

import numpy as np

from .._checks import as_int, fail, real_number
from .optimizer import Optimizer, _plain


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``last_epoch``, ``state_dict()`` / ``load_state_dict()``.

    Subclasses implement ``get_lr()`` (the lrs for ``last_epoch``, usually from the
    current ``group["lr"]``) and, where one exists, ``_get_closed_form_lr()``
    (from ``base_lrs``; used when :class:`SequentialLR` restarts a schedule).

    Parameters
    ----------
    optimizer : Optimizer
    last_epoch : int, -1 for a fresh schedule; >= 0 to resume (then every group needs ``initial_lr``).
    """

    def __init__(self, optimizer, last_epoch=-1):
        op = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            fail(op, "optimizer", "a convkit.optim.Optimizer", type(optimizer).__name__, TypeError)
        self.optimizer = optimizer
        last_epoch = as_int(op, "last_epoch", last_epoch, minimum=-1)
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{op}: param_groups[{i}] must have 'initial_lr' when resuming with last_epoch >= 0 "
                               f"(load the optimizer's state_dict first); got last_epoch={last_epoch}.")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        raise NotImplementedError

    def get_last_lr(self):
        """The lrs the last ``step()`` set, one per param group."""
        return list(self._last_lr)

    def step(self):
        """Advance the schedule by one step and write the new lrs into the optimizer's groups."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    # ------------------------------------------------------------ state_dict
    def state_dict(self):
        """Every attribute but the optimizer, as plain types (lists, dicts, numbers, str, bool)."""
        return {k: _plain(v) for k, v in vars(self).items() if k not in ("optimizer", "_schedulers")}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned (also after a JSON / npz round trip)."""
        op = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            fail(op, "state_dict", "a dict", state_dict, TypeError)
        known = set(vars(self)) - {"optimizer"}
        unknown = sorted(map(str, set(state_dict) - known))
        if unknown:
            raise ValueError(f"{op}: state_dict keys must be attributes of {type(self).__name__}; "
                             f"got unknown keys {unknown}.")
        for k, v in state_dict.items():
            if k == "_schedulers":
                continue
            setattr(self, k, v.tolist() if isinstance(v, np.ndarray) else v)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps: ``lr = base_lr * gamma ** (epoch // step_size)``.

    >>> import numpy as np, convkit
    >>> from convkit.optim import SGD
    >>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> sched = StepLR(opt, step_size=3)
    >>> for _ in range(3): sched.step()
    >>> sched.get_last_lr()
    [0.1]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = as_int(type(self).__name__, "step_size", step_size, minimum=1)
        self.gamma = real_number(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone (a milestone listed n times multiplies by gamma**n).

    ``milestones`` is kept as a sorted list (torch keeps a Counter).

    >>> import numpy as np, convkit
    >>> from convkit.optim import SGD
    >>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> sched = MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    >>> [(sched.step(), sched.get_last_lr()[0])[1] for _ in range(4)]
    [0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        op = type(self).__name__
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            fail(op, "milestones", "an iterable of ints", milestones, TypeError)
        self.milestones = sorted(as_int(op, "milestones", m, minimum=0) for m in milestones)
        self.gamma = real_number(op, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        n = self.milestones.count(self.last_epoch)
        if n == 0:
            return self._group_lrs()
        return [group["lr"] * self.gamma ** n for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** bisect_right(self.milestones, self.last_epoch) for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base lr to ``eta_min`` over ``T_max`` steps (no restarts).

    ``lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` in closed form; like torch
    it is computed recursively from the current lr, and past ``T_max`` it rises again (period 2 T_max).

    >>> import numpy as np, convkit
    >>> from convkit.optim import SGD
    >>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> sched = CosineAnnealingLR(opt, T_max=2)
    >>> [round((sched.step(), sched.get_last_lr()[0])[1], 12) for _ in range(2)]
    [0.5, 0.0]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        op = type(self).__name__
        self.T_max = as_int(op, "T_max", T_max, minimum=1)
        self.eta_min = real_number(op, "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, T, eta = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and e > 0:
            return [eta + (base_lr - eta) * (1 + math.cos(e * math.pi / T)) / 2 for base_lr in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base_lr - eta) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups, strict=True)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (group["lr"] - eta) + eta
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        e, T, eta = self.last_epoch, self.T_max, self.eta_min
        return [eta + (base_lr - eta) * (1 + math.cos(math.pi * e / T)) / 2 for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor going linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps.

    The usual warm-up: ``LinearLR(opt, start_factor=0.1, total_iters=5)`` reaches the base lr at step 5.

    >>> import numpy as np, convkit
    >>> from convkit.optim import SGD
    >>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> sched = LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> [sched.get_last_lr()[0]] + [(sched.step(), sched.get_last_lr()[0])[1] for _ in range(3)]
    [0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        op = type(self).__name__
        self.start_factor = real_number(op, "start_factor", start_factor)
        if not 0 < self.start_factor <= 1:
            fail(op, "start_factor", "in (0, 1]", start_factor)
        self.end_factor = real_number(op, "end_factor", end_factor)
        if not 0 <= self.end_factor <= 1:
            fail(op, "end_factor", "in [0, 1]", end_factor)
        self.total_iters = as_int(op, "total_iters", total_iters, minimum=1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, s, f, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        if e == 0:
            return [group["lr"] * s for group in self.optimizer.param_groups]
        if self._is_initial or e > n:
            return self._group_lrs()
        return [group["lr"] * (1.0 + (f - s) / (n * s + (e - 1) * (f - s))) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        e, s, f, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        return [base_lr * (s + (f - s) * min(n, e) / n) for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at each of ``milestones`` (e.g. warm-up, then cosine).

    At a milestone the next schedule restarts from its step 0 (from the base lrs).

    >>> import numpy as np, convkit
    >>> from convkit.optim import SGD
    >>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> warm = LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> decay = StepLR(opt, step_size=1, gamma=0.5)
    >>> sched = SequentialLR(opt, [warm, decay], milestones=[2])
    >>> [sched.get_last_lr()[0]] + [(sched.step(), sched.get_last_lr()[0])[1] for _ in range(4)]
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        op = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            fail(op, "optimizer", "a convkit.optim.Optimizer", type(optimizer).__name__, TypeError)
        schedulers = list(schedulers)
        if not schedulers:
            fail(op, "schedulers", "a non-empty list of schedulers", schedulers)
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(f"{op}: schedulers must be LRSchedulers; got schedulers[{i}] of type "
                                f"{type(s).__name__}.")
            if s.optimizer is not optimizer:
                raise ValueError(f"{op}: every scheduler must belong to the given optimizer; "
                                 f"got schedulers[{i}] ({type(s).__name__}) built on another optimizer.")
        milestones = [as_int(op, "milestones", m, minimum=0) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            fail(op, "len(milestones)", f"len(schedulers) - 1 = {len(schedulers) - 1}", len(milestones))
        if any(a >= b for a, b in pairwise(milestones)):
            fail(op, "milestones", "strictly increasing", milestones)
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = as_int(op, "last_epoch", last_epoch, minimum=-1) + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo(self)  # the schedulers' constructors each took step 0; only the first's should count
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    @classmethod
    def _undo(cls, sched):
        if isinstance(sched, SequentialLR):
            for s in sched._schedulers:
                cls._undo(s)
        else:
            sched.last_epoch -= 1

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        out = super().state_dict()
        out["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return out

    def load_state_dict(self, state_dict):
        op = f"{type(self).__name__}.load_state_dict"
        subs = state_dict.get("_schedulers") if isinstance(state_dict, Mapping) else None
        if not isinstance(subs, (list, tuple)) or len(subs) != len(self._schedulers):
            fail(op, "state_dict['_schedulers']", f"a list of {len(self._schedulers)} scheduler states", subs)
        super().load_state_dict(state_dict)
        for s, sd in zip(self._schedulers, subs):
            s.load_state_dict(sd)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith): lr rises from ``max_lr / div_factor`` to ``max_lr``, then anneals far below.

    Two phases by default (fastai's); ``three_phase=True`` follows the paper. The cycle has
    ``total_steps`` steps (or ``epochs * steps_per_epoch``); stepping past it raises. With
    ``cycle_momentum`` (the default, as torch) the optimizer's ``momentum`` (SGD, RMSprop) or
    ``betas[0]`` (Adam, AdamW) cycles inversely between ``max_momentum`` and ``base_momentum``.
    The groups get ``initial_lr``, ``max_lr``, ``min_lr`` (and ``max_momentum``, ``base_momentum``).

    >>> import numpy as np, convkit
    >>> from convkit.optim import SGD
    >>> opt = SGD([convkit.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    >>> sched = OneCycleLR(opt, max_lr=1.0, total_steps=4, pct_start=0.5, anneal_strategy="linear",
    ...                    div_factor=4.0, final_div_factor=1.0, cycle_momentum=False)
    >>> [sched.get_last_lr()[0]] + [(sched.step(), sched.get_last_lr()[0])[1] for _ in range(3)]
    [0.25, 1.0, 0.625, 0.25]
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        op = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            fail(op, "optimizer", "a convkit.optim.Optimizer", type(optimizer).__name__, TypeError)
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = as_int(op, "total_steps", total_steps, minimum=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (as_int(op, "epochs", epochs, minimum=1)
                                * as_int(op, "steps_per_epoch", steps_per_epoch, minimum=1))
        else:
            raise ValueError(f"{op}: total_steps, or both epochs and steps_per_epoch, must be given; "
                             f"got total_steps=None, epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}.")
        pct = real_number(op, "pct_start", pct_start)
        if not 0 <= pct <= 1:
            fail(op, "pct_start", "in [0, 1]", pct_start)
        if anneal_strategy not in ("cos", "linear"):
            fail(op, "anneal_strategy", "'cos' or 'linear'", anneal_strategy)
        self._anneal_func_type = anneal_strategy
        div_factor = real_number(op, "div_factor", div_factor, positive=True)
        final_div_factor = real_number(op, "final_div_factor", final_div_factor, positive=True)
        if not isinstance(three_phase, (bool, np.bool_)):
            fail(op, "three_phase", "a bool", three_phase, TypeError)
        n = self.total_steps
        if three_phase:
            self._schedule_phases = [
                _phase(float(pct * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                _phase(n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(float(pct * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        groups = optimizer.param_groups
        max_lrs = _per_group(op, "max_lr", max_lr, len(groups))
        if last_epoch == -1:
            for group, m in zip(groups, max_lrs):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if not isinstance(cycle_momentum, (bool, np.bool_)):
            fail(op, "cycle_momentum", "a bool", cycle_momentum, TypeError)
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{op}: cycle_momentum=True needs an optimizer with momentum or betas; "
                                 f"got {type(optimizer).__name__} (pass cycle_momentum=False).")
            self.use_beta1 = "betas" in optimizer.defaults
            maxs = _per_group(op, "max_momentum", max_momentum, len(groups))
            bases = _per_group(op, "base_momentum", base_momentum, len(groups))
            if last_epoch == -1:
                for m, b, group in zip(maxs, bases, groups):
                    if self.use_beta1:
                        group["betas"] = (m, *group["betas"][1:])
                    else:
                        group["momentum"] = m
                    group["max_momentum"] = m
                    group["base_momentum"] = b
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _anneal(kind, start, end, pct):
        if kind == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"{type(self).__name__}.step: the number of steps must be <= total_steps "
                             f"({self.total_steps}); got step {step_num}.")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal(self._anneal_func_type, group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        mom = self._anneal(self._anneal_func_type, group[phase["start_momentum"]],
                                           group[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (mom, *group["betas"][1:])
                else:
                    group["momentum"] = mom
        return lrs


def _phase(end_step, start_lr, end_lr, start_momentum, end_momentum):
    return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
            "start_momentum": start_momentum, "end_momentum": end_momentum}


def _per_group(op, name, value, n):
    """One float per param group, from a number or a sequence of n numbers."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != n:
            fail(op, f"len({name})", f"{n} (one per param group)", len(value))
        return [real_number(op, name, v) for v in value]
    return [real_number(op, name, value)] * n


__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR"]
