"""InferenceSession: an ONNX graph run op by op with convkit.onnx.ops, behind onnxruntime's
``run(output_names, {name: array})`` and as a convkit.nn.Module (initializers are buffers)."""
from __future__ import annotations

import functools
import inspect
from collections import Counter

import numpy as np

from .. import _blas, _parallel
from ..autograd import Tensor
from ..functional._weights import WeightCache
from ..nn.module import Module
from . import _batch, ops
from .ops_tensor import DTYPES, np_dtype
from ._proto import inline_external_data, read_model, require_onnx

# TensorProto element type -> onnxruntime's type string.
_TYPE_NAMES = {1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
               9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64", 16: "bfloat16"}
_SUPPORTED = frozenset(ops.__all__)
_WRAP = (ValueError, TypeError, IndexError, KeyError, ArithmeticError, MemoryError)


def _type_name(elem_type):
    if elem_type in _TYPE_NAMES:
        return _TYPE_NAMES[elem_type]
    from onnx import TensorProto

    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"type {elem_type}"


class NodeArg:
    """A graph input or output as onnxruntime describes it: name, shape (ints, dim names or None), type."""

    def __init__(self, name, shape, type):
        self.name, self.shape, self.type = name, shape, type

    def __repr__(self):
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def _node_arg(vi):
    t = vi.type.tensor_type
    shape = None
    if t.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    return NodeArg(vi.name, shape, f"tensor({_type_name(t.elem_type)})")


def _attr_value(a, onnx):
    from onnx import AttributeProto, numpy_helper

    if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS, AttributeProto.SPARSE_TENSOR,
                  AttributeProto.SPARSE_TENSORS, AttributeProto.TYPE_PROTO, AttributeProto.TYPE_PROTOS):
        raise ValueError(f"attribute {a.name!r} is a graph, sparse tensor or type, which convkit does not support")
    v = onnx.helper.get_attribute_value(a)
    if a.type == AttributeProto.TENSOR:
        return numpy_helper.to_array(v)
    if a.type == AttributeProto.TENSORS:
        return [numpy_helper.to_array(t) for t in v]
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode() for s in v]
    return v


def _legacy_softmax(fn):
    """Softmax/LogSoftmax before opset 13: flatten to 2-D at ``axis`` (default 1), normalise the rows."""
    def call(x, *, axis=1):
        a = axis % x.ndim if x.ndim else 0
        return fn(x.reshape(int(np.prod(x.shape[:a])), -1), axis=1).reshape(x.shape)
    return call


def _resize10(X, scales, *, mode="nearest"):
    return ops.Resize(X, None, scales, mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _bind(op, opset, attrs, n_out):
    """The callable for one node at this opset, with the node's attributes bound as keywords."""
    fn = getattr(ops, op)
    if op in ("Softmax", "LogSoftmax") and opset < 13:
        fn = _legacy_softmax(fn)
    elif op == "Resize" and opset < 11:
        fn = _resize10
    elif op == "Pad" and "value" in attrs:
        attrs["constant_value"] = attrs.pop("value")
    elif op == "MaxPool":
        attrs["return_indices"] = n_out > 1
    elif op == "Dropout":
        attrs["return_mask"] = n_out > 1
    elif op == "Split" and "num_outputs" not in attrs:
        attrs["num_outputs"] = n_out
    elif op == "BatchNormalization" and n_out > 1 and opset < 14:
        raise ValueError("training-mode outputs (mean, var, saved_mean, saved_var) before opset 14 are "
                         "not supported")
    elif op == "Cast":
        np_dtype(attrs.get("to", 0))
    params = inspect.signature(fn).parameters
    private = sorted(a for a in attrs if a.startswith("_"))   # the session's own keywords, not attributes
    if private:
        raise ValueError(f"attributes {private} are not {op}'s (opset {opset})")
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(attrs) - set(params))
        if unknown:
            raise ValueError(f"attributes {unknown} are not {op}'s (opset {opset})")
    return fn, attrs


def _writable_float(a, shape, dtype):
    return (isinstance(a, np.ndarray) and a.flags.writeable and a.dtype.kind == "f" and a.shape == shape
            and a.dtype == dtype)


def _relu_into(fn, into, X):
    """Relu overwriting X (a value no other node reads)."""
    if not _writable_float(X, X.shape, X.dtype):
        return fn(X)
    return np.maximum(X, 0, out=X)


def _add_into(fn, into, A, B):
    """Add overwriting input ``into`` (a value no other node reads) when it has the result's shape and dtype."""
    target = (A, B)[into]
    A, B = np.asarray(A), np.asarray(B)
    if not _writable_float(target, np.broadcast_shapes(A.shape, B.shape), A.dtype) or B.dtype != A.dtype:
        return fn(A, B)
    return np.add(A, B, out=target)


def _windows_reach_input(attrs):
    """Whether every window of a MaxPool with these attributes holds an input cell, whatever the input's size:
    no dilation and every pad smaller than the kernel (onnxruntime refuses larger pads). A window of padding
    alone gives -inf, and relu(-inf) = 0, so only then may a Relu before the pool run after it."""
    k = attrs.get("kernel_shape") or ()
    pads = attrs.get("pads") or ()
    return (bool(k) and all(d == 1 for d in attrs.get("dilations") or ())
            and all(p < k[i % len(k)] for i, p in enumerate(pads)))


class _KeptTransforms:
    """The WeightCache of one Conv weight initializer, for ops_conv.Conv's ``_weights``. It serves only the
    session's own array of that initializer (``own()``, kept read-only), never a weight fed by a caller,
    and is made anew when that array changes (another array, or :meth:`clear` after load_state_dict)."""

    def __init__(self, own):
        self.own = own
        self.cache = None

    def __call__(self, w):
        if w is not self.own() or w.flags.writeable:
            return None
        if self.cache is None or self.cache.weight is not w:
            self.cache = WeightCache(w)
        return self.cache

    def clear(self):
        self.cache = None


# A batch is run in parts side by side (InferenceSession._parts) from this many samples per part and this many
# numbers fed. ResNet-18 at 224x224 on two cores, ms, the whole batch (two BLAS threads) vs two parts (one BLAS
# thread each), interleaved: batch 2 (parts of one sample) 54.9 vs 63.6, slower; batch 4 109.9 vs 91.8; batch 8
# 163-171 vs 129-138; batch 16 370 vs 269 (docs/performance.md, session 14).
_SPLIT_MIN_SAMPLES = 2
_SPLIT_MIN_ELEMENTS = 1 << 16


def _split_flag(split_batch):
    if not isinstance(split_batch, bool):
        raise TypeError(f"convkit.onnx.load: split_batch must be a bool; got split_batch={split_batch!r}.")
    return split_batch


# Ops whose output is always a new array of their own (never an input, nor a view of one); a value one of
# them makes that only one node reads may be overwritten by that node. The ops that then overwrite it:
_FRESH = frozenset({"Conv", "ConvTranspose", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Gemm",
                    "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool"})
_IN_PLACE = {"Relu": _relu_into, "Add": _add_into}


class InferenceSession(Module):
    """An ONNX model run on NumPy. Build one with :func:`convkit.onnx.load`.

    ``run(output_names, {input_name: array})`` returns a list of arrays, as onnxruntime's does;
    calling it as a Module, ``session(x, ...)``, feeds the graph inputs in order and returns the
    output (a tuple when there are several). Initializers are buffers: ``state_dict()`` lists them
    by their ONNX names and ``load_state_dict`` replaces weights.
    """

    def __init__(self, model, *, label="<ModelProto>", split_batch=True):
        super().__init__()
        object.__setattr__(self, "_split_batch", _split_flag(split_batch))
        onnx = require_onnx()
        from onnx import numpy_helper

        self.eval()
        object.__setattr__(self, "label", label)
        opsets = {o.domain: o.version for o in model.opset_import}
        opset = opsets.get("", opsets.get("ai.onnx"))
        newest = onnx.defs.onnx_opset_version()
        if opset is None or not 7 <= opset <= newest:
            raise ValueError(f"convkit.onnx.load: {label}: the ai.onnx opset must be 7 to {newest}; "
                             f"got opset={opset!r}.")
        self.opset = opset
        g = model.graph
        if len(g.sparse_initializer):
            raise ValueError(f"convkit.onnx.load: {label}: sparse initializers are not supported.")
        known = set()
        for vi in [*g.input, *g.output]:
            t = vi.type
            if not t.HasField("tensor_type"):
                raise ValueError(f"convkit.onnx.load: {label}: graph input/output {vi.name!r} is not a tensor "
                                 f"(sequence, map and optional values are not supported).")
            if t.tensor_type.elem_type not in DTYPES:
                raise ValueError(f"convkit.onnx.load: {label}: graph input/output {vi.name!r} has element type "
                                 f"{_type_name(t.tensor_type.elem_type)}, which NumPy has no dtype for.")
        for t in g.initializer:
            if t.data_type not in DTYPES:
                raise ValueError(f"convkit.onnx.load: {label}: initializer {t.name!r} has element type "
                                 f"{_type_name(t.data_type)}, which NumPy has no dtype for.")
            try:
                arr = np.array(numpy_helper.to_array(t), copy=True)
            except Exception as e:
                raise ValueError(f"convkit.onnx.load: {label}: initializer {t.name!r} cannot be read ({e}).") from None
            self.register_buffer(t.name, arr)
            known.add(t.name)
        self._inputs = [_node_arg(vi) for vi in g.input if vi.name not in known]
        self._outputs = [_node_arg(vi) for vi in g.output]
        self._input_types = {vi.name: vi.type.tensor_type.elem_type for vi in g.input}
        known.update(a.name for a in self._inputs)

        unsupported = [(i, n) for i, n in enumerate(g.node)
                       if n.domain not in ("", "ai.onnx") or n.op_type not in _SUPPORTED]
        if unsupported:
            seen = {}
            for i, n in unsupported:
                seen.setdefault((n.domain, n.op_type), (i, n.name))
            listed = "; ".join(f"{(d + '::') if d else ''}{op} (first at node {i}, {name!r})"
                               for (d, op), (i, name) in seen.items())
            raise ValueError(f"convkit.onnx.load: {label}: unsupported op(s): {listed}. convkit runs these ops: "
                             f"{', '.join(sorted(_SUPPORTED))}.")
        self._nodes, params = [], []
        for i, n in enumerate(g.node):
            where = f"node {i} ({n.name!r}, {n.op_type})"
            for name in n.input:
                if name and name not in known:
                    raise ValueError(f"convkit.onnx.load: {label}: {where}: input {name!r} is not a graph input, "
                                     f"an initializer or an earlier node's output (a missing initializer, or "
                                     f"nodes out of order).")
            try:
                attrs = {a.name: _attr_value(a, onnx) for a in n.attribute}
                fn, attrs = _bind(n.op_type, opset, attrs, len(n.output))
            except ValueError as e:
                raise ValueError(f"convkit.onnx.load: {label}: {where}: {e}.") from None
            known.update(o for o in n.output if o)
            self._nodes.append((i, n.name, n.op_type, list(n.input), list(n.output), fn, attrs))
            params.append(tuple(p.name for p in inspect.signature(fn).parameters.values()
                                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)))
        object.__setattr__(self, "_params", params)   # the names of each node's inputs, for _batch.check
        object.__setattr__(self, "_mixed", set())      # feed signatures whose batch could not be split
        for o in self._outputs:
            if o.name not in known:
                raise ValueError(f"convkit.onnx.load: {label}: graph output {o.name!r} is produced by no node.")
        # nodes computed from Constant nodes alone (not from inputs, nor from weights) are evaluated once
        # and kept: e.g. the ConstantOfShape weights of the onnx package's light model zoo
        # small initializers count too (shapes, fill values): the cache is dropped when their bytes change
        # (not those also listed as graph inputs: a caller may feed those)
        fed = {vi.name for vi in g.input}
        small = [t.name for t in g.initializer if self._buffers[t.name].data.size <= 64 and t.name not in fed]
        object.__setattr__(self, "_small", small)
        static, self._static = set(small), set()
        for k, (_, _, op, ins, outs, _, _) in enumerate(self._nodes):
            if op == "Constant" or (ins and all(n and n in static for n in ins)):
                self._static.add(k)
                static.update(outs)
        object.__setattr__(self, "_static_cache", {})
        object.__setattr__(self, "_static_values", static)
        self._pool_before_relu()
        self._run_in_place()
        self._keep_weight_transforms()
        # the last node that reads each value, to drop intermediates early
        last = {}
        for k, (_, _, _, ins, _, _, _) in enumerate(self._nodes):
            for name in ins:
                last[name] = k
        self._free_after = [[] for _ in self._nodes]
        for name, k in last.items():
            self._free_after[k].append(name)

    def _links(self):
        """(the node index that makes each value, how many node inputs read each value, the graph outputs)."""
        producer = {o: k for k, node in enumerate(self._nodes) for o in node[4] if o}
        readers = Counter(n for node in self._nodes for n in node[3] if n)
        return producer, readers, {o.name for o in self._outputs}

    def _pool_before_relu(self):
        """A Relu whose output only a MaxPool reads runs after the pool instead: max(relu(x)) = relu(max(x)) for
        any window holding an input cell (_windows_reach_input), and the Relu then passes over the pooled
        values, a quarter or less of its input (ResNet-18, batch 8, in parts of 4: the Relus took 3.6 -> 2.9
        ms per part). The pool takes the Relu's place and
        reads its input; the Relu takes the pool's place and writes the pool's output. The value between them
        (the Relu's output, read by the pool alone) now holds the pooled values before the Relu."""
        producer, readers, outputs = self._links()
        for j, (i, name, op, ins, outs, fn, attrs) in enumerate(self._nodes):
            k = producer.get(ins[0]) if op == "MaxPool" and ins else None
            if (k is None or len(outs) != 1 or attrs.get("return_indices") or self._nodes[k][2] != "Relu"
                    or readers[ins[0]] != 1 or ins[0] in outputs or {j, k} & self._static
                    or not _windows_reach_input(attrs)):
                continue
            relu = self._nodes[k]
            between = ins[0]     # now the pooled values before the Relu
            self._nodes[k] = (i, name, op, [relu[3][0]], [between], fn, attrs)
            self._nodes[j] = relu[:3] + ([between], outs) + relu[5:]
            self._params[k], self._params[j] = self._params[j], self._params[k]

    def _run_in_place(self):
        """Relu and Add write into an input that nothing else reads: a Relu after a Conv then costs one pass
        over the conv's output and no new array (ResNet-18, batch 8, summed over its nodes: Relu 9.6 -> 5.4 ms,
        Add 2.6 -> 2.0 ms)."""
        producer, readers, outputs = self._links()

        def donated(name):
            k = producer.get(name)
            return (k is not None and k not in self._static and self._nodes[k][2] in _FRESH and readers[name] == 1
                    and name not in outputs)

        for k, (i, name, op, ins, outs, fn, attrs) in enumerate(self._nodes):
            if k in self._static or op not in _IN_PLACE:
                continue
            into = next((j for j, n in enumerate(ins[:2]) if n and donated(n)), None)
            if into is not None:
                self._nodes[k] = (i, name, op, ins, outs, functools.partial(_IN_PLACE[op], fn, into), attrs)

    def _keep_weight_transforms(self):
        """Conv weights that are initializers become read-only, and their transforms (Winograd's U, ...)
        are made once and kept: ResNet-18's 512->512 3x3 layers at batch 8 then take Winograd, 8.7 -> 7.8 ms
        each inside the network. The kept transforms take memory: U is 4x its weight."""
        kept = {}
        for k, (i, name, op, ins, outs, fn, attrs) in enumerate(self._nodes):
            w = ins[1] if op == "Conv" and len(ins) > 1 else None
            if not w or w not in self._buffers or k in self._static:
                continue
            self._buffers[w].data.flags.writeable = False
            holder = kept.setdefault(w, _KeptTransforms(functools.partial(self._buffer_array, w)))
            self._nodes[k] = (i, name, op, ins, outs, functools.partial(fn, _weights=holder), attrs)
        object.__setattr__(self, "_kept", kept)

    def _buffer_array(self, name):
        b = self._buffers.get(name)
        return None if b is None else b.data

    def load_state_dict(self, state_dict, strict=True):
        """Module.load_state_dict, into the read-only Conv weights too; their kept transforms are dropped."""
        locked = [b.data for b in self._buffers.values() if b is not None and not b.data.flags.writeable
                  and b.data.base is None]
        for a in locked:
            a.flags.writeable = True
        try:
            return super().load_state_dict(state_dict, strict)
        finally:
            for a in locked:
                a.flags.writeable = False
            for holder in self._kept.values():
                holder.clear()
            self._mixed.clear()   # a Reshape's shape, say, may now keep samples apart

    # ------------------------------------------------------------ onnxruntime's interface
    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def op_counts(self):
        """How many nodes use each op type, in first-use order."""
        return Counter(op for _, _, op, _, _, _, _ in self._nodes)

    def _check_feed(self, feed):
        if not hasattr(feed, "items"):
            raise TypeError(f"convkit.onnx: {self.label}: input_feed must be a dict of input name -> array; "
                            f"got {type(feed).__name__}.")
        expected = [a.name for a in self._inputs]
        unknown = [k for k in feed if k not in self._input_types]
        missing = [k for k in expected if k not in feed]
        if unknown or missing:
            raise ValueError(f"convkit.onnx: {self.label}: input_feed must name the model's inputs {expected}; "
                             f"got {list(feed)} (missing {missing}, unknown {unknown}).")
        out = {}
        for k, v in feed.items():
            arr = np.asarray(v.data if isinstance(v, Tensor) else v)
            want = self._input_types.get(k)
            ref = DTYPES.get(want)
            if ref is not None and arr.dtype != np.dtype(ref) and not (ref is np.object_ and arr.dtype.kind in "OU"):
                raise ValueError(f"convkit.onnx: {self.label}: input {k!r} must be tensor({_TYPE_NAMES[want]}); "
                                 f"got dtype={arr.dtype.name!r}.")
            arg = next((a for a in self._inputs if a.name == k), None)
            if arg is not None and arg.shape is not None:
                ok = len(arg.shape) == arr.ndim and all(not isinstance(d, int) or d <= 0 or d == s
                                                         for d, s in zip(arg.shape, arr.shape))
                if not ok:
                    raise ValueError(f"convkit.onnx: {self.label}: input {k!r} must have shape {arg.shape}; "
                                     f"got shape={arr.shape}.")
            out[k] = arr.astype(object) if arr.dtype.kind == "U" else arr
        return out

    def _execute(self, feed, keep=(), batched=None):
        """Run the nodes on ``feed``; returns every value kept (``keep``, the initializers, the values not yet
        freed). With ``batched`` (a set of value names, first the fed ones), each node is checked to keep
        samples apart before it runs (_batch.check raises _batch.Mixed), and the names of the batched
        values it makes are added to the set."""
        env = {k: b.data for k, b in self._buffers.items() if b is not None}
        env.update(feed)
        keep = set(keep)
        if batched is None:
            self._refresh_static()
        for k, (i, name, op, ins, outs, fn, attrs) in enumerate(self._nodes):
            res = self._static_cache.get(k)
            if res is None:
                args = [env[n] if n else None for n in ins]
                while args and args[-1] is None:
                    args.pop()
                if batched is not None and _batch.check(op, self._params[k], args, attrs,
                                                        [n in batched for n in ins[:len(args)]], self.opset):
                    batched.update(o for o in outs if o)
                try:
                    res = fn(*args, **attrs)
                except _WRAP as e:
                    raise ValueError(f"convkit.onnx: {self.label}: node {i} ({name!r}, {op}) failed: {e}") from e
                if k in self._static:
                    self._static_cache[k] = res
            if not isinstance(res, tuple):
                res = (res,)
            for o, r in zip(outs, res):
                if o:
                    env[o] = np.asarray(r)
            for n in self._free_after[k]:
                if n not in keep and n not in self._buffers:
                    env.pop(n, None)
        return env

    def _refresh_static(self):
        """Drop the kept values of constant nodes when the small initializers they read have changed."""
        stamp = b"".join(self._buffers[n].data.tobytes() for n in self._small)
        if stamp != self.__dict__.get("_stamp"):
            self._static_cache.clear()
            object.__setattr__(self, "_stamp", stamp)

    def _parts(self, feed):
        """Sample ranges to run side by side, one per convkit thread, or None. A batch is split when every
        fed array has the same batch size (axis 0), each part gets at least _SPLIT_MIN_SAMPLES samples and
        the feed holds at least _SPLIT_MIN_ELEMENTS numbers, convkit has several threads (and is not
        already running on one of them), BLAS can be held to one thread per part, and this feed's shapes
        have not been found to mix samples before."""
        arrays = list(feed.values())
        if not self._split_batch or not arrays or any(a.ndim == 0 or a.dtype == object for a in arrays):
            return None
        n = arrays[0].shape[0]
        pieces = min(_parallel.num_threads(), n // _SPLIT_MIN_SAMPLES)
        if (pieces < 2 or any(a.shape[0] != n for a in arrays) or sum(a.size for a in arrays) < _SPLIT_MIN_ELEMENTS
                or _parallel.in_worker() or not _blas.can_set_threads() or self._signature(feed) in self._mixed):
            return None
        cuts = [n * j // pieces for j in range(pieces + 1)]
        return list(zip(cuts[:-1], cuts[1:]))

    @staticmethod
    def _signature(feed):
        return tuple((k, a.shape, a.dtype.str) for k, a in sorted(feed.items()))

    def _run_parts(self, feed, parts, names):
        """``names``' values for the whole batch, from its parts run side by side on convkit's threads with
        one BLAS thread each (ResNet-18, batch 8: see docs/performance.md), or None when a node may mix the
        samples or a part fails (the caller then runs the whole batch, and reports its errors)."""
        self._refresh_static()

        def run_part(span):
            part = {k: a[span[0]:span[1]] for k, a in feed.items()}
            batched = set(part)
            env = self._execute(part, keep=names, batched=batched)
            return [(env[n], n in batched) for n in names]

        try:
            with _blas.one_thread():
                got = _parallel.run_blocks(run_part, parts, always=True)
        except _batch.Mixed:
            if len(self._mixed) >= 256:   # many shapes seen: forget them rather than grow without end
                self._mixed.clear()
            self._mixed.add(self._signature(feed))
            return None
        except Exception:
            return None
        return [np.concatenate([p[j][0] for p in got]) if got[0][j][1] else got[0][j][0]
                for j in range(len(names))]

    def run(self, output_names=None, input_feed=None, run_options=None):
        """Outputs named in ``output_names`` (all when None) for the inputs in ``input_feed``, as a list.

        A large batch runs in parts side by side, one per convkit thread, when every node keeps the
        samples apart (see convkit.onnx._batch); the results are the same up to rounding."""
        names = [o.name for o in self._outputs] if not output_names else list(output_names)
        valid = {o.name for o in self._outputs}
        bad = [n for n in names if n not in valid]
        if bad:
            raise ValueError(f"convkit.onnx: {self.label}: output_names must be among {sorted(valid)}; got {bad}.")
        feed = self._check_feed(input_feed or {})
        parts = self._parts(feed)
        values = self._run_parts(feed, parts, names) if parts else None
        if values is None:
            env = self._execute(feed, keep=names)
            values = [env[n] for n in names]
        # a cached constant is handed out as a copy, so that changing it changes nothing here
        return [v.copy() if n in self._static_values else v for n, v in zip(names, values)]

    # ------------------------------------------------------------ Module interface
    def forward(self, *inputs):
        if len(inputs) != len(self._inputs):
            raise ValueError(f"convkit.onnx: {self.label}: forward takes the graph inputs "
                             f"{[a.name for a in self._inputs]}; got {len(inputs)} argument(s).")
        as_tensor = any(isinstance(x, Tensor) for x in inputs)
        outs = self.run(None, {a.name: x for a, x in zip(self._inputs, inputs)})
        if as_tensor:
            outs = [Tensor(o) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def extra_repr(self):
        return (f"{self.label}, opset={self.opset}, inputs={[a.name for a in self._inputs]}, "
                f"outputs={[a.name for a in self._outputs]}, nodes={len(self._nodes)}")


def load(model, *, split_batch=True):
    """Read an ONNX model (a path, its bytes, or an onnx.ModelProto) into an :class:`InferenceSession`.

    Only the protobuf is parsed; nothing in the file is executed. External tensor data is read
    only from files inside the model's own folder. Every op is checked at load time: an op
    convkit does not run fails here, naming the node. ``split_batch=False`` keeps every run whole
    (by default a large batch runs in parts side by side, one per convkit thread, where the graph
    keeps its samples apart: see docs/onnx.md).
    """
    _split_flag(split_batch)   # before the file is read
    model, label, folder = read_model(model)
    inline_external_data(model, label, folder)
    return InferenceSession(model, label=label, split_batch=split_batch)
