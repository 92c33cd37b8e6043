"""The :class:`Optimizer` base: param groups, per-parameter state, state_dict.

The structure is torch.optim.Optimizer's. ``param_groups`` is a list of
dicts, each holding ``"params"`` (a list of Tensors) and the group's
hyperparameters; ``state`` maps a parameter to a dict of its buffers
(NumPy arrays in the parameter's dtype) and ``"step"`` (a plain int).
Subclasses supply ``_check_group`` (validate and normalise one group's
hyperparameters), ``_update`` (one parameter's in-place update) and
``_state_arrays`` / ``_required_state`` (what ``load_state_dict`` checks).

state_dict format (torch's; parameters numbered 0, 1, ... in group order)::

    {"state": {0: {"step": 3, "exp_avg": ndarray, ...}, ...},
     "param_groups": [{"lr": 0.001, "betas": [0.9, 0.999], ..., "params": [0, 1]}, ...]}

Only dicts, lists, str, numbers, bools, None and ndarrays appear (tuples
such as betas are saved as lists), so it can be written without pickle.
``"step"`` is always a plain int; ``load_state_dict`` also accepts a 0-d
array (torch's float32 step tensor included) and state keys that came back
as strings ("0") after a JSON round trip.
"""
from __future__ import annotations

import copy
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from .._checks import fail, flag, real_number, same_shape
from .._parallel import num_threads, parts, run_blocks
from ..autograd import Tensor, enable_grad


class Optimizer:
    """Base class of the optimizers, after torch.optim.Optimizer.

    Parameters
    ----------
    params : iterable of Tensor, or iterable of dict
        The parameters to optimise, or param-group dicts
        ``{"params": [...], "lr": 0.1, ...}`` whose missing keys take ``defaults``.
    defaults : dict
        The hyperparameters of a group that does not set them.
    """

    _state_arrays = ()      # state entries that are arrays of the parameter's shape
    _required_state = ()    # entries a non-empty loaded state must have

    def __init__(self, params, defaults):
        op = type(self).__name__
        self.defaults = dict(defaults)
        self._check_group(self.defaults, op)
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{op}: params must be an iterable of Tensors or of param-group dicts; "
                            f"got a single Tensor of shape {params.shape} (wrap it in a list).")
        if isinstance(params, (set, frozenset)) or not isinstance(params, Iterable):
            fail(op, "params", "an iterable of Tensors or of param-group dicts (ordered, not a set)",
                 params, TypeError)
        groups = list(params)
        if not groups:
            fail(op, "params", "a non-empty list of Tensors or of param-group dicts", groups)
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"

    # ------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Append a group: ``{"params": [...], **hyperparameters}``; missing keys take ``defaults``."""
        op = type(self).__name__
        if not isinstance(param_group, Mapping):
            fail(op, "param_group", "a dict with a 'params' key", param_group, TypeError)
        if "params" not in param_group:
            raise ValueError(f"{op}: param_group must have a 'params' key; got keys {sorted(param_group)}.")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)) or not isinstance(params, Iterable):
            fail(op, "params", "a Tensor or an ordered iterable of Tensors (not a set)", params, TypeError)
        params = list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        gi = len(self.param_groups)
        for j, p in enumerate(params):
            where = f"param_groups[{gi}]['params'][{j}]"
            if not isinstance(p, Tensor):
                raise TypeError(f"{op}: every parameter must be a Tensor; got {where} of type {type(p).__name__}.")
            if not p.is_leaf:
                raise ValueError(f"{op}: every parameter must be a leaf Tensor (not the result of an op); "
                                 f"got {where} with grad_fn={p.grad_fn}.")
            if id(p) in seen:
                raise ValueError(f"{op}: a parameter must appear only once across all param groups; "
                                 f"got {where} (shape {p.shape}) a second time.")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group, op)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group, op):
        """Validate the hyperparameters in ``group`` and normalise them in place."""

    # ------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient: to None (default, as torch), or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; return ``closure()`` if given (it re-evaluates the loss)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        op = f"{type(self).__name__}.step"
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                self._update(p.data, _grad_array(op, p), state, group)
                if state.get("step", _FLUSH_EVERY) % _FLUSH_EVERY == 0:
                    for name in self._state_arrays:
                        if isinstance(state.get(name), np.ndarray):
                            flush_subnormals_(state[name])
        return loss

    def _update(self, x, g, state, group):
        """Update the array ``x`` in place from its gradient ``g`` (same dtype and shape); never write to g."""
        raise NotImplementedError

    # ------------------------------------------------------------ state_dict
    def state_dict(self):
        """The optimizer's state in torch's structure, as plain types and (copied) ndarrays; see the module doc."""
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: _plain(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                entry = self.state.get(p)
                if entry:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else _plain(v))
                                           for k, v in entry.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load what :meth:`state_dict` made (or that after an npz + JSON round trip, or torch's).

        The groups' hyperparameters are taken from ``state_dict`` (keys it lacks
        keep their current values); arrays are copied into the parameters'
        dtypes. Everything is checked before anything is assigned, so a failed
        load leaves the optimizer as it was.
        """
        op = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            fail(op, "state_dict", "a dict with keys 'state' and 'param_groups'", state_dict, TypeError)
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{op}: state_dict must have keys 'state' and 'param_groups'; "
                             f"got keys {sorted(map(str, state_dict))}.")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            fail(op, "state_dict['param_groups']", "a list of dicts", saved_groups, TypeError)
        if not isinstance(saved_state, Mapping):
            fail(op, "state_dict['state']", "a dict", saved_state, TypeError)
        if len(saved_groups) != len(self.param_groups):
            fail(op, "len(param_groups)", f"{len(self.param_groups)} (the optimizer's group count)",
                 len(saved_groups))

        by_index, group_of, new_groups = {}, {}, []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            ids = saved.get("params")
            if isinstance(ids, np.ndarray):
                ids = ids.tolist()
            if not isinstance(ids, (list, tuple)):
                fail(op, f"param_groups[{i}]['params']", "a list of parameter indices", ids, TypeError)
            if len(ids) != len(group["params"]):
                fail(op, f"len(param_groups[{i}]['params'])",
                     f"{len(group['params'])} (the size of the optimizer's group {i})", len(ids))
            for k, p in zip(ids, group["params"]):
                k = _index(op, f"param_groups[{i}]['params']", k)
                if k in by_index:
                    raise ValueError(f"{op}: parameter indices must be unique; got index {k} twice in param_groups.")
                by_index[k], group_of[k] = p, i
            new = {k: v for k, v in group.items() if k != "params"}
            new.update(copy.deepcopy({k: v for k, v in saved.items() if k != "params"}))
            self._check_group(new, f"{op} (param_groups[{i}])")
            new["params"] = group["params"]
            new_groups.append(new)

        new_state = defaultdict(dict)
        for key, entry in saved_state.items():
            k = _index(op, "state key", key)
            if k not in by_index:
                raise ValueError(f"{op}: state keys must be parameter indices listed in param_groups "
                                 f"(0 to {len(by_index) - 1}); got state key {key!r}.")
            if not isinstance(entry, Mapping):
                fail(op, f"state[{k}]", "a dict", entry, TypeError)
            loaded = self._load_entry(op, f"state[{k}]", entry, by_index[k])
            if loaded:
                new_state[by_index[k]] = loaded

        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state

    def _load_entry(self, op, name, entry, p):
        """One parameter's saved state, checked and copied into the parameter's dtype."""
        out = {}
        for key, value in entry.items():
            if key == "step":
                out[key] = _as_step(op, f"{name}['step']", value)
            elif key in self._state_arrays:
                if value is None:  # torch's SGD once saved momentum_buffer=None for "no buffer yet"
                    continue
                arr = np.asarray(value)
                same_shape(op, f"{name}[{key!r}]", arr.shape, p.shape, "the parameter's shape")
                if arr.dtype.kind not in "fiu":
                    raise TypeError(f"{op}: {name}[{key!r}] must hold real numbers; "
                                    f"got {name}[{key!r}].dtype={arr.dtype}.")
                out[key] = np.array(arr, dtype=p.dtype, copy=True)
            else:
                out[key] = copy.deepcopy(value)
        missing = [k for k in self._required_state if k not in out]
        if out and missing:
            raise ValueError(f"{op}: {name} must have the keys {list(self._required_state)}; "
                             f"got keys {sorted(map(str, entry))} (missing {missing}).")
        return out


# ---------------------------------------------------------------------------
# Helpers shared by the optimizers: argument checks and small array kernels.
# ---------------------------------------------------------------------------

def _grad_array(op, p):
    g = p.grad
    g = np.asarray(g.data if isinstance(g, Tensor) else g)
    if g.shape != p.data.shape:
        raise ValueError(f"{op}: a parameter's grad must have its shape; "
                         f"got param.shape={p.data.shape}, grad.shape={g.shape}.")
    return g if g.dtype == p.data.dtype else g.astype(p.data.dtype)


def check_real(op, group, name, low=None, high=None, low_open=False, high_open=False):
    """group[name] as a float in the interval [low, high] (ends open as asked); the error names the bound."""
    value = group[name]
    x = real_number(op, name, value)
    bad_low = low is not None and (x <= low if low_open else x < low)
    bad_high = high is not None and (x >= high if high_open else x > high)
    if bad_low or bad_high:
        if high is None:
            constraint = f"{'>' if low_open else '>='} {low:g}"
        else:
            constraint = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        fail(op, name, constraint, value)
    group[name] = x
    return x


def check_flag(op, group, name):
    """group[name] as a Python bool (see convkit._checks.flag)."""
    group[name] = flag(op, name, group[name])
    return group[name]


def check_betas(op, group, name="betas"):
    betas = group[name]
    if isinstance(betas, np.ndarray):
        betas = betas.tolist()
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        fail(op, name, "a pair (beta1, beta2)", betas, TypeError)
    out = []
    for i, b in enumerate(betas):
        out.append(check_real(op, {f"{name}[{i}]": b}, f"{name}[{i}]", 0.0, 1.0, high_open=True))
    group[name] = tuple(out)
    return group[name]


def effective_grad(x, g, weight_decay, maximize):
    """The gradient an update rule sees: (-g if maximize else g) + weight_decay * x, as torch.

    Returns ``g`` itself when there is nothing to add, so callers must not write into the result
    unless it is a fresh array (``result is not g``).
    """
    # out= everywhere: on 0-d arrays a ufunc without it returns a NumPy scalar, which cannot be updated in place
    if weight_decay == 0:
        return np.negative(g, out=np.empty_like(x)) if maximize else g
    out = np.multiply(x, weight_decay, out=np.empty_like(x))
    return np.subtract(out, g, out=out) if maximize else np.add(out, g, out=out)


# Bytes of one array per block: a block of each of the five or six arrays an update touches
# stays (about) in the L2 cache, so its ten-odd passes read memory once rather than once per
# pass; smaller blocks pay more Python overhead per ufunc call. Measured on mnist_cnn's 3.3 M
# parameters, one thread, the cache swept between steps (ms, blocks of 64 / 128 / 256 / 512 KB):
# Adam 8.53 / 7.61 / 7.63 / 8.18, SGD with momentum 6.39 / 5.98 / 5.69 / 5.77.
_BLOCK_BYTES = 1 << 18


def blockwise(kernel, arrays, scratch=0):
    """Run ``kernel(*views, *scratch_arrays)`` over cache-sized blocks of same-shaped arrays.

    ``arrays`` are the parameter, its gradient and its state arrays (None entries pass through
    as None); ``scratch`` is how many temporaries of a block's size the kernel needs. A large
    C-contiguous parameter is cut into flat blocks, which threads take in contiguous runs
    (NumPy's ufuncs release the GIL); anything else is one block. Every element sees the same
    operations in the same order either way, so results are bitwise those of one whole pass.
    """
    x = arrays[0]
    block = max(1, _BLOCK_BYTES // x.itemsize)
    live = [a for a in arrays if a is not None]
    if x.size <= block or not all(a.flags.c_contiguous for a in live):
        kernel(*arrays, *(np.empty_like(x) for _ in range(scratch)))
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    starts = list(range(0, x.size, block))

    def run(part):
        tmps = [np.empty(block, x.dtype) for _ in range(scratch)]
        for i in part:
            sl = slice(i, min(i + block, x.size))
            n = sl.stop - sl.start
            kernel(*(None if f is None else f[sl] for f in flat), *(t[:n] for t in tmps))

    run_blocks(run, [starts[p] for p in parts(len(starts), num_threads())])


# Running averages are cleared of subnormal numbers every this many steps (at each step for
# optimizers without a step count). A momentum that decays with zero gradients (a weight whose input
# is always 0: a dead ReLU, an MNIST border pixel) passes through the subnormal range for about 200
# steps, and every operation on a subnormal float32 is 15-30x slower on x86 CPUs, which NumPy cannot
# set to flush them: measured on mnist_cnn, 1.1 M of 3.3 M Adam averages were subnormal after 1,200
# steps and an Adam step took 19.8 ms instead of 8.6.
_FLUSH_EVERY = 16


def flush_subnormals_(a):
    """Set the subnormal entries of the float array ``a`` to (signed) zero, in place; NaN and inf stay.

    Changes each entry by less than the smallest normal number (1.2e-38 in float32), far below
    what an update can resolve.
    """
    if a.dtype.kind != "f" or a.size == 0:
        return a
    keep = np.abs(a) >= np.finfo(a.dtype).tiny   # True for inf; False for NaN, and NaN * False is NaN
    np.multiply(a, keep, out=a)
    return a


def lerp_(a, b, w, tmp):
    """a <- a + w * (b - a) in place, in torch's two branches (the exact one for |w| < 0.5 and w >= 0.5)."""
    np.subtract(b, a, out=tmp)
    if abs(w) < 0.5:
        tmp *= w
        a += tmp
    else:
        tmp *= w - 1.0
        np.add(b, tmp, out=a)


def addcmul_(a, t1, t2, value, tmp):
    """a <- a + value * t1 * t2 in place (torch's addcmul_, same rounding order)."""
    np.multiply(t1, value, out=tmp)
    tmp *= t2
    a += tmp


def _plain(v):
    """Tuples to lists and NumPy scalars to Python ones, recursively: what state_dict may hold."""
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v


def _index(op, name, k):
    if isinstance(k, str) and k.strip().lstrip("-").isdigit():
        k = int(k)
    if isinstance(k, np.ndarray) and k.shape == ():
        k = k.item()
    if isinstance(k, bool):
        fail(op, name, "an int", k, TypeError)
    try:
        return operator.index(k)
    except TypeError:
        fail(op, name, "an int", k, TypeError)


def _as_step(op, name, value):
    """A step count as a plain int, from an int, an integral float or a 0-d array (torch's float32 tensor)."""
    arr = np.asarray(value)
    ok = (arr.shape == () and arr.dtype.kind in "iuf" and not isinstance(value, bool)
          and np.isfinite(arr) and float(arr) == int(arr) and int(arr) >= 0)
    if not ok:
        exc = ValueError if arr.dtype.kind in "iuf" else TypeError
        fail(op, name, "a whole number >= 0 (an int or a 0-d array)", value, exc)
    return int(arr)
