"""convkit.Tensor: a NumPy array that records the ops applied to it.

Each op makes its output with :func:`result`, which stores a backward
closure (the op's vjp) and the parent tensors; ``backward()`` walks that
graph once in reverse topological order and fills ``.grad`` of the leaves
that require it. The design is micrograd's, over whole arrays.
"""
from __future__ import annotations

import threading

import numpy as np

_MODE = threading.local()


def is_grad_enabled():
    """Whether ops record the graph now (False inside :class:`no_grad`)."""
    return getattr(_MODE, "enabled", True)


class set_grad_enabled:
    """Turn graph recording on or off; a context manager that restores the old mode."""

    def __init__(self, mode):
        self.prev = is_grad_enabled()
        _MODE.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _MODE.enabled = self.prev


class no_grad:
    """Context manager and decorator: no graph is recorded inside (evaluation, optimizer steps)."""

    _mode = False

    def __enter__(self):
        self.prev = is_grad_enabled()
        _MODE.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _MODE.enabled = self.prev

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class enable_grad(no_grad):
    """Context manager and decorator: record the graph even inside no_grad."""

    _mode = True


class Node:
    """One recorded op: its parents and the closure mapping grad_out to their grads."""

    __slots__ = ("backward", "parents", "name")

    def __init__(self, backward, parents, name):
        self.backward, self.parents, self.name = backward, parents, name


def _default_array(data, dtype):
    """torch.tensor's dtype rule: Python floats become float32; arrays keep theirs."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)
    return arr


class Tensor:
    """A NumPy array with an autograd history.

    ``data`` is the array (read and write it freely outside the graph),
    ``grad`` the accumulated gradient (a Tensor, or None), ``requires_grad``
    whether gradients flow to it. Operators broadcast as NumPy does and the
    gradient of a broadcast operand is summed back to its shape.

    >>> import convkit
    >>> x = convkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "_retain", "__weakref__")
    __array_priority__ = 100.0

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = _default_array(data, dtype)
        self.grad = None
        self._node = None
        self._retain = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------ basics
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    def __len__(self):
        return len(self.data)

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return None if self._node is None else self._node.name

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad_: only floating-point tensors can require gradients; "
                            f"got dtype={self.data.dtype}.")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_: a non-leaf tensor's requires_grad cannot be turned off; "
                               "use .detach().")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` during backward."""
        self._retain = True

    def detach(self):
        """The same data (shared, not copied), cut from the graph."""
        return Tensor(self.data)

    def numpy(self):
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: the tensor must have one element; got shape={self.data.shape}.")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        a = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return a.copy() if copy else a

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self.data.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{self._node.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError("bool: the truth value of a tensor with more than one element is ambiguous.")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu":
            raise TypeError(f"index: only integer tensors can be indices; got dtype={self.data.dtype}.")
        return int(self.item())

    __hash__ = object.__hash__

    # ------------------------------------------------------------ backward
    def backward(self, gradient=None, retain_graph=False):
        """Fill ``.grad`` of every leaf this tensor depends on that requires grad.

        gradient : dL/dself; needed unless self holds one element (then 1).
        Gradients accumulate: call ``zero_grad`` between steps. The graph's
        saved arrays are freed as it is walked unless ``retain_graph``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: the tensor does not require grad and has no grad_fn "
                               "(no input had requires_grad=True, or it was made under no_grad).")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: gradient must be given for a non-scalar output; "
                                   f"got shape={self.data.shape}.")
            g = np.ones_like(self.data)
        else:
            g = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.data.dtype)
            if g.shape != self.data.shape:
                raise ValueError(f"backward: gradient must have the output's shape {self.data.shape}; "
                                 f"got shape={g.shape}.")
        grads = {id(self): g}
        # which gradients are the engine's alone (see _exclusive): a leaf then takes its array as .grad
        # instead of a copy, as PyTorch's AccumulateGrad steals a gradient nothing else holds
        own = {id(self): gradient is None}
        with no_grad():
            for t in _topological(self):
                g = grads.pop(id(t), None)
                mine = own.pop(id(t), False)
                if g is None:
                    continue
                node = t._node
                if node is None or t._retain:
                    t._accumulate(g, take=mine and node is None)
                if node is None:
                    continue
                if node.backward is None:
                    raise RuntimeError(f"backward: tried to go back through {node.name} a second time; its saved "
                                       f"arrays were freed. Pass retain_graph=True to the first backward().")
                parent_grads = node.backward(g)
                if not retain_graph:
                    node.backward = None
                parent_grads = [gp if gp is None or type(gp) is np.ndarray else np.asarray(gp)
                                for gp in parent_grads]
                for i, (p, gp) in enumerate(zip(node.parents, parent_grads)):
                    if gp is None or p is None or not p.requires_grad:
                        continue
                    k = id(p)
                    if k in grads:
                        grads[k] = grads[k] + gp
                        own[k] = True
                    else:
                        grads[k] = gp
                        own[k] = _exclusive(gp, g, mine, parent_grads, i)

    def _accumulate(self, g, take=False):
        """Add g to .grad; a first gradient is copied, or with ``take`` (the engine's alone, see _exclusive)
        kept as it is when it has the leaf's dtype and is contiguous (the layout a copy would have)."""
        if g.shape != self.data.shape:  # a bug in some op's backward, never the user's
            raise RuntimeError(f"backward: gradient shape {g.shape} does not match tensor shape {self.data.shape}.")
        if self.grad is None:
            if not (take and g.dtype == self.data.dtype and (g.flags.c_contiguous or g.flags.f_contiguous)):
                g = np.array(g, dtype=self.data.dtype, copy=True)
            self.grad = Tensor(g)
        else:
            self.grad.data += g

    # Dispatch of convkit.functional ops (see functional/_dispatch.py).
    @classmethod
    def __convkit_function__(cls, fn, args, kwargs):
        from .functional import dispatch

        return dispatch(fn, args, kwargs)


# A node with more gradients than this (a cat of many tensors) hands its inputs copies, as before: checking
# every pair of them for shared memory would cost more than the copies save.
_EXCLUSIVE_MAX_SIBLINGS = 8


def _exclusive(gp, g, g_mine, siblings, i):
    """Whether the gradient ``gp`` that a node's backward returned (the i-th of ``siblings``, given g) is the
    engine's alone: writeable, sharing memory with no other gradient of the same node (an Add hands the
    same g to both of its inputs), and, if it shares memory with g (a reshape's view, g itself), only when
    g was the engine's alone too. Anything else a backward returns is computed afresh: convkit's ops do not
    return views of what they saved. The gradient the user passed to backward() is not the engine's."""
    if not gp.flags.writeable or len(siblings) > _EXCLUSIVE_MAX_SIBLINGS:
        return False
    if any(j != i and s is not None and np.may_share_memory(gp, s) for j, s in enumerate(siblings)):
        return False
    return g_mine or not np.may_share_memory(gp, g)


def _topological(root):
    """Tensors reachable from root through nodes, outputs before inputs (iterative DFS)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for p in t._node.parents:
                if p is not None and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    order.reverse()
    return order


def result(data, parents, backward, name):
    """Wrap an op's output array; record ``backward`` when a parent requires grad.

    ``backward(g)`` returns one gradient (or None) per parent, in order.
    """
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out._node, out._retain, out.requires_grad = data, None, None, False, False
    if is_grad_enabled() and any(p is not None and p.requires_grad for p in parents):
        out.requires_grad = True
        out._node = Node(backward, tuple(parents), name)
    return out


def tensor(data, requires_grad=False, dtype=None):
    """A new leaf Tensor holding a copy of ``data`` (Python floats become float32, as in PyTorch)."""
    if isinstance(data, Tensor):
        data = data.data
    arr = _default_array(data, dtype)
    return Tensor(np.array(arr, copy=True), requires_grad=requires_grad)


def as_tensor(data, dtype=None):
    """``data`` as a Tensor, sharing memory where it can."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return Tensor(data, dtype=dtype)
