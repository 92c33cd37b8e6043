"""Export a convkit model to an ONNX file by tracing one forward pass.

The model runs once (in eval mode, without autograd) on a tracing tensor, a
Tensor subclass whose ``__convkit_function__`` receives every ``F.*`` op and
every Tensor op applied to it (see ``functional/_dispatch.py`` and the end of
``autograd/ops.py``). Each call computes its real output with the op itself
and emits the ONNX node (or the few nodes) that compute the same thing; the
emitters live in :mod:`convkit.onnx._export_ops`. Parameters and buffers
become initializers named as in ``state_dict()``; other arrays the model
uses become constants. Model code that reads a traced tensor's values (a
branch on them, ``np.asarray``, ``.item()``) cannot be recorded and fails
with an error naming where it happened.

With ``dynamic_batch`` the first dim of every input is the symbolic
``batch``: a reshape that keeps dim 0 is written with ONNX's 0 ("copy the
input's dim") and one that changes it with -1, so the file runs at any batch
size as long as the model only folds the batch into dim 0.
"""
from __future__ import annotations

import functools
import inspect
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ..autograd import Tensor, no_grad

MIN_OPSET = 13
_DATA = Tensor.__dict__["data"]  # the slot behind Tensor.data; the tracing tensor hides it behind a property


class ExportError(ValueError):
    """The model does something that has no ONNX form (an op, an argument, a data-dependent branch)."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export: needs the onnx package (pip install 'convkit[onnx]').") from None
    return onnx


# ---------------------------------------------------------------- the tracing tensor

def _arr(t):
    """The array inside any Tensor, the tracing one included."""
    return _DATA.__get__(t) if isinstance(t, Tensor) else t


def _escape(self, *value):
    # name the frame that read the values and the first frame of the model's own code above it
    here, package = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1]
    frames, f = [], sys._getframe(1)
    while f is not None and len(frames) < 2:
        file = Path(f.f_code.co_filename).resolve()
        if here not in file.parents and (not frames or package not in file.parents):
            frames.append(f"{f.f_code.co_name} ({file.name}:{f.f_lineno})")
        f = f.f_back
    raise ExportError(f"export: the model reads the values of a traced tensor in {', called from '.join(frames)}"
                      f"{_where(self.graph)}; only convkit.functional ops and Tensor ops can be exported, "
                      "and no branch may depend on the data.")


class _Traced(Tensor):
    """A Tensor standing for an ONNX value: ``sym`` names it in ``graph``."""

    __slots__ = ("sym", "graph")
    data = property(_escape, _escape)

    shape = property(lambda self: _arr(self).shape)
    dtype = property(lambda self: _arr(self).dtype)
    ndim = property(lambda self: _arr(self).ndim)

    def size(self, dim=None):
        s = _arr(self).shape
        return s if dim is None else s[dim]

    def numel(self):
        return _arr(self).size

    def dim(self):
        return _arr(self).ndim

    def __len__(self):
        return len(_arr(self))

    def detach(self):
        return self

    def __repr__(self):
        return f"<traced {self.sym!r} shape={self.shape} dtype={self.dtype}>"

    @classmethod
    def __convkit_function__(cls, fn, args, kwargs):
        return _record(fn, args, kwargs)


def _traced(arr, sym, graph):
    t = Tensor.__new__(_Traced)
    _DATA.__set__(t, arr)
    t.grad, t._node, t._retain, t.requires_grad = None, None, False, False
    t.sym, t.graph = sym, graph
    return t


# ---------------------------------------------------------------- the graph being built

class _Graph:
    """Nodes, initializers and naming of the ONNX graph under construction."""

    def __init__(self, opset, dynamic_batch):
        self.opset, self.dynamic = opset, dynamic_batch
        self.nodes = []              # [op_type, inputs, outputs, attrs, name]
        self.inits = {}              # name -> array
        self.param_names = {}        # id(Tensor) -> state_dict name
        self.params = {}             # name -> Tensor
        self.scope = []              # (module path, type name) of the modules being run
        self.batch = None            # the sample's batch size (dim 0 of the first input)
        self._counts = Counter()
        self._consts = {}

    # names
    def _unique(self, base):
        self._counts[base] += 1
        k = self._counts[base]
        return base if k == 1 else f"{base}_{k - 1}"

    def node(self, op_type, inputs, n_out=1, **attrs):
        """Append a node; returns its output name (a tuple of names when n_out > 1)."""
        path = self.scope[-1][0] if self.scope else ""
        name = self._unique("/" + path.replace(".", "/") + ("/" if path else "") + op_type)
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append([op_type, list(inputs), outs, {k: v for k, v in attrs.items() if v is not None}, name])
        return outs[0] if n_out == 1 else tuple(outs)

    def const(self, value, dtype=None):
        """An initializer holding ``value`` (small ones shared)."""
        a = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self._unique("/Constant")
        self.inits[name] = a
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        return self.const(np.asarray(list(values), np.int64))

    # values
    def arr(self, v):
        """The concrete array of an argument (traced, a parameter, an array or a number)."""
        return _arr(v) if isinstance(v, Tensor) else np.asarray(v)

    def input(self, v, dtype=None):
        """The ONNX name for argument ``v``: a traced value, a parameter (by its state_dict name) or a constant.

        ``dtype``: the value as that dtype (a Cast node for a traced value of another dtype)."""
        if isinstance(v, _Traced):
            if dtype is not None and v.dtype != np.dtype(dtype):
                return self.node("Cast", [v.sym], to=_tensor_type(dtype))
            return v.sym
        if isinstance(v, Tensor) and id(v) in self.param_names:
            name = self.param_names[id(v)]
            a = _arr(v)
            if dtype is not None and a.dtype != np.dtype(dtype):
                return self.const(a, dtype)
            self.inits[name] = np.ascontiguousarray(a)
            return name
        return self.const(self.arr(v), dtype)

    def unsupported(self, what):
        return ExportError(f"export: {what} has no ONNX export{_where(self)}.")


def _where(graph):
    if graph is None or not graph.scope:
        return ""
    path, kind = graph.scope[-1]
    return f" (in module '{path}', {kind})" if path else f" (in the model, {kind})"


def _tensor_type(dtype):
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ---------------------------------------------------------------- recording one op

@functools.cache
def _signature(fn):
    return inspect.signature(fn)


def _plain(v, tensors):
    """An argument with every tracing tensor replaced by its array (or a plain Tensor for Tensor ops)."""
    if isinstance(v, (list, tuple)) and any(isinstance(b, Tensor) for b in v):
        return type(v)(_plain(b, tensors) for b in v)
    if isinstance(v, Tensor):
        return Tensor(_arr(v)) if tensors else _arr(v)
    return v


def _arrays_of(out):
    if isinstance(out, Tensor):
        return _arr(out)
    if isinstance(out, tuple):
        return type(out)(*map(_arrays_of, out)) if hasattr(out, "_fields") else tuple(map(_arrays_of, out))
    return out


def _wrap(out, syms, graph):
    if isinstance(out, tuple):
        items = [_wrap(o, s, graph) for o, s in zip(out, syms)]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return _traced(np.asarray(out), syms, graph)


def _graph_of(args, kwargs):
    for v in (*args, *kwargs.values()):
        for b in v if isinstance(v, (list, tuple)) else (v,):
            if isinstance(b, _Traced):
                return b.graph
    return None


def _record(fn, args, kwargs):
    from . import _export_ops as E

    graph = _graph_of(args, kwargs)
    tensor_op = fn.__module__.startswith("convkit.autograd")
    name = fn.__name__
    table = E.TENSOR_OPS if tensor_op else E.FUNCTIONAL_OPS
    emit = table.get(name)
    if emit is None:
        raise graph.unsupported(f"{'Tensor.' if tensor_op else 'F.'}{name}")
    bound = _signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    pargs = [_plain(v, tensor_op) for v in args]
    pkwargs = {k: _plain(v, tensor_op) for k, v in kwargs.items()}
    with no_grad():
        out = _arrays_of(fn(*pargs, **pkwargs))
    try:
        syms = emit(graph, bound.arguments, out, name)
    except ExportError as e:
        if _where(graph) and _where(graph) not in str(e):
            raise ExportError(str(e).rstrip(".") + _where(graph) + ".") from None
        raise
    return _wrap(out, syms, graph)


# ---------------------------------------------------------------- export

def _scope_forwards(model, graph):
    """Make each submodule's forward push its path, so nodes and errors name the module they come from."""
    from ..nn import Module

    undo = []
    if not isinstance(model, Module):
        return undo
    for path, m in model.named_modules():
        own = m.__dict__.get("forward")
        inner = m.forward

        def scoped(*args, _inner=inner, _path=path, _kind=type(m).__name__, **kwargs):
            graph.scope.append((_path, _kind))
            try:
                return _inner(*args, **kwargs)
            finally:
                graph.scope.pop()
        object.__setattr__(m, "forward", scoped)
        undo.append((m, own))
    return undo


def _names(given, n, default, what):
    if given is None:
        return [default] if n == 1 else [f"{default}{i}" for i in range(n)]
    names = [given] if isinstance(given, str) else list(given)
    if len(names) != n or len(set(names)) != n or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"export: {what} must be {n} distinct non-empty strings; got {what}={given!r}.")
    return names


def _outputs(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)) and out and all(isinstance(o, Tensor) for o in out):
        return list(out)
    raise ExportError(f"export: the model must return a Tensor or a tuple of Tensors; got {type(out).__name__}.")


def _value_info(name, a, batch, dynamic):
    from onnx import helper
    dims = list(a.shape)
    if dynamic and dims and dims[0] == batch:
        dims[0] = "batch"
    return helper.make_tensor_value_info(name, _tensor_type(a.dtype), dims)


def export(model, sample_input, path, opset=17, input_names=None, output_names=None, dynamic_batch=True):
    """Write ``model`` as an ONNX file that onnxruntime runs to convkit's own output.

    The model is traced once on ``sample_input`` in eval mode (its training
    flag is restored afterwards) and every ``F.*`` and Tensor op it applies
    becomes ONNX nodes: Conv/ConvTranspose (1-3d, any padding form; reflect,
    replicate and circular padding as a Pad first), pools (MaxPool,
    AveragePool, LpPool, GlobalAveragePool, adaptive pools), BatchNormalization
    (eval), Layer/Group/InstanceNormalization, LRN, Gemm/MatMul, the
    activations, Dropout (as Identity), and the Tensor arithmetic, reductions,
    reshapes, transposes, indexing and cat.

    Parameters
    ----------
    model : a convkit.nn.Module (or any callable of Tensors).
    sample_input : an array or Tensor (or a tuple of them, one per input); its
        shape and dtype are the file's, except the batch dim with ``dynamic_batch``.
    path : the .onnx file to write (atomically); None writes nothing.
    opset : ONNX opset, from 13 to the onnx package's newest.
    input_names, output_names : default "input"/"output" ("input0", ... for several).
    dynamic_batch : make dim 0 of the inputs (and of outputs that carry it) symbolic.

    Returns the ``onnx.ModelProto`` (checked with ``onnx.checker.check_model``).
    An op with no ONNX form raises :class:`ExportError` (a ValueError) naming
    the op and the module it was called in.

    Examples
    --------
    >>> import numpy as np, convkit.nn as nn, convkit.onnx
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
    >>> m = convkit.onnx.export(net, np.zeros((1, 1, 4, 4), np.float32), None)
    >>> [n.op_type for n in m.graph.node]
    ['Conv', 'Relu', 'Reshape', 'Gemm']
    """
    onnx = _onnx()
    from onnx import helper

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset must be an int from {MIN_OPSET} to {newest}; got opset={opset!r}.")
    samples = tuple(sample_input) if isinstance(sample_input, (tuple, list)) else (sample_input,)
    arrays = [np.asarray(_arr(s)) for s in samples]
    if not arrays or any(a.ndim == 0 or a.dtype.kind not in "biuf" for a in arrays):
        raise ValueError(f"export: sample_input must be one or more numeric arrays of at least one dim; got "
                         f"shapes {[a.shape for a in arrays]}, dtypes {[str(a.dtype) for a in arrays]}.")
    in_names = _names(input_names, len(arrays), "input", "input_names")
    graph = _Graph(int(opset), bool(dynamic_batch))
    graph.batch = arrays[0].shape[0]
    training = getattr(model, "training", None)
    if hasattr(model, "named_parameters"):
        for name, t in (*model.named_parameters(), *model.named_buffers()):
            graph.param_names.setdefault(id(t), name)
            graph.params[name] = t
        clash = set(in_names) & set(graph.params)
        if clash:
            raise ValueError(f"export: input_names must differ from the parameter names; got {sorted(clash)}.")
    inputs = [_traced(a, n, graph) for a, n in zip(arrays, in_names)]
    undo = _scope_forwards(model, graph)
    try:
        if training is not None:
            model.eval()
        with no_grad():
            outs = _outputs(model(*inputs))
    finally:
        for m, own in undo:
            m.__dict__.pop("forward", None)
            if own is not None:
                object.__setattr__(m, "forward", own)
        if training is not None:
            model.train(training)
    out_names = _names(output_names, len(outs), "output", "output_names")
    _name_outputs(graph, outs, out_names, set(in_names))
    nodes = [helper.make_node(op, ins, outs_, name=name, **attrs) for op, ins, outs_, attrs, name in graph.nodes]
    inits = [onnx.numpy_helper.from_array(a, name) for name, a in graph.inits.items()]
    g = helper.make_graph(nodes, "convkit", [_value_info(n, a, graph.batch, graph.dynamic)
                                             for n, a in zip(in_names, arrays)],
                          [_value_info(n, _arr(o), graph.batch, graph.dynamic) for n, o in zip(out_names, outs)],
                          inits)
    opset_id = helper.make_opsetid("", int(opset))
    proto = helper.make_model(g, opset_imports=[opset_id], producer_name="convkit",
                              producer_version=_version())
    proto.ir_version = helper.find_min_ir_version_for([opset_id])
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from ..train.checkpoint import atomic_write
        data = proto.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return proto


def _version():
    from .. import __version__
    return str(__version__)


def _name_outputs(graph, outs, out_names, in_names):
    """Give each output its wanted name: rename the node output, or add an Identity where it cannot be."""
    produced = {o: node for node in graph.nodes for o in node[2]}
    renamed = {}
    for t, name in zip(outs, out_names):
        sym = t.sym if isinstance(t, _Traced) else graph.const(_arr(t))
        if sym in produced and sym not in renamed and sym not in in_names:
            renamed[sym] = name
        else:
            graph.nodes.append(["Identity", [renamed.get(sym, sym)], [name], {}, graph._unique("/Identity")])
    for node in graph.nodes:
        node[1] = [renamed.get(s, s) for s in node[1]]
        node[2] = [renamed.get(s, s) for s in node[2]]
