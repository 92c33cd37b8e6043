"""Reading ONNX files safely: parse the protobuf (nothing in it is executed), check its shape
as a model, and bring external tensor data in only from files inside the model's own folder."""
from __future__ import annotations

import os
from pathlib import Path


def require_onnx(what="convkit.onnx.load"):
    try:
        import onnx
    except ImportError:
        raise ImportError(f"{what} needs the onnx package to read ONNX files (only its protobuf parser is used): "
                          "pip install onnx, or pip install 'convkit[onnx]'.") from None
    return onnx


def read_model(source):
    """(ModelProto, label, folder) from a path, bytes or a ModelProto; ValueError if it does not parse."""
    onnx = require_onnx()
    folder = None
    if isinstance(source, onnx.ModelProto):
        model, label = source, "<ModelProto>"
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data, label = bytes(source), "<bytes>"
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            data, label, folder = path.read_bytes(), str(path), path.resolve().parent
        else:
            raise TypeError(f"convkit.onnx.load: model must be a path, bytes or an onnx.ModelProto; "
                            f"got {type(source).__name__}.")
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as e:  # google.protobuf's DecodeError, or a RuntimeWarning-free failure
            raise ValueError(f"convkit.onnx.load: {label} is not a valid ONNX model: the protobuf does not parse "
                             f"({e}); the file may be truncated or corrupt.") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ValueError(f"convkit.onnx.load: {label} is not a valid ONNX model: it has no graph nodes "
                         f"(truncated, corrupt, or not an ONNX file).")
    return model, label, folder


def _tensors(model):
    """Every TensorProto in the main graph: initializers and Constant/attribute tensors, with a description."""
    g = model.graph
    for t in g.initializer:
        yield t, f"initializer {t.name!r}"
    for i, node in enumerate(g.node):
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t, f"node {i} ({node.name or node.op_type}) attribute {a.name!r}"
            for t in a.tensors:
                yield t, f"node {i} ({node.name or node.op_type}) attribute {a.name!r}"


def _safe_location(location, folder, label, where):
    bad = (not location or os.path.isabs(location) or location.startswith(("/", "\\"))
           or (len(location) > 1 and location[1] == ":") or ".." in Path(location.replace("\\", "/")).parts)
    target = (folder / location).resolve() if not bad else None
    if bad or (folder not in target.parents):
        raise ValueError(f"convkit.onnx.load: {label}: {where} refers to external data at {location!r}, which is "
                         f"outside the model's folder {str(folder)!r}; only relative paths inside it are read.")
    return target


def inline_external_data(model, label, folder):
    """Copy external tensor data into the tensors, reading only regular files inside ``folder``."""
    from onnx import TensorProto

    for t, where in _tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        if folder is None:
            raise ValueError(f"convkit.onnx.load: {label}: {where} keeps its data in an external file "
                             f"({info.get('location')!r}); load the model from its path so that file is read "
                             f"from the model's folder.")
        target = _safe_location(info.get("location", ""), folder, label, where)
        if not target.is_file():
            raise ValueError(f"convkit.onnx.load: {label}: {where} refers to external data {info['location']!r}, "
                             f"which is not a file in {str(folder)!r}.")
        offset = int(info.get("offset", 0) or 0)
        length = info.get("length")
        with open(target, "rb") as f:
            f.seek(offset)
            raw = f.read(int(length)) if length else f.read()
        if length and len(raw) != int(length):
            raise ValueError(f"convkit.onnx.load: {label}: {where}: external file {info['location']!r} is shorter "
                             f"than offset + length ({offset} + {length}).")
        t.raw_data = raw
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT
