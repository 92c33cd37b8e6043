"""Read small images without an imaging library: PNG (8-bit, non-interlaced) and binary PGM/PPM."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _unfilter(raw, h, w, ch):
    stride = w * ch
    out = np.zeros((h, stride), np.int32)
    rows = memoryview(raw)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ftype = rows[y * (stride + 1)]
        line = np.frombuffer(rows[y * (stride + 1) + 1:(y + 1) * (stride + 1)], np.uint8).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 255
        else:  # Sub, Average and Paeth depend on the pixel to the left: go along the row
            for i in range(stride):
                a = cur[i - ch] if i >= ch else 0
                b = prev[i]
                c = prev[i - ch] if i >= ch else 0
                if ftype == 1:
                    p = a
                elif ftype == 3:
                    p = (a + b) // 2
                elif ftype == 4:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                else:
                    raise ValueError(f"bad PNG filter type {ftype}")
                cur[i] = (line[i] + p) & 255
        out[y], prev = cur, cur
    return out.astype(np.uint8).reshape(h, w, ch)


def _read_png(blob, path):
    pos, chunks = 8, []
    header = None
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"read_image: '{path}' is truncated.")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not chunks:
        raise ValueError(f"read_image: '{path}' is not a complete PNG file.")
    w, h, depth, ctype, _, _, interlace = header
    if depth != 8 or ctype not in _CHANNELS or interlace:
        raise ValueError(f"read_image: '{path}' must be an 8-bit, non-interlaced grey, RGB or RGBA PNG; "
                         f"got bit depth {depth}, colour type {ctype}, interlace {interlace}.")
    try:
        raw = zlib.decompress(b"".join(chunks))
    except zlib.error as e:
        raise ValueError(f"read_image: '{path}' has corrupted image data ({e}).") from None
    ch = _CHANNELS[ctype]
    if len(raw) != h * (w * ch + 1):
        raise ValueError(f"read_image: '{path}' has {len(raw)} bytes of pixels; a {w}x{h} image needs "
                         f"{h * (w * ch + 1)}.")
    img = _unfilter(raw, h, w, ch)
    return img[..., :1] if ch == 2 else img[..., :3] if ch == 4 else img


def _read_pnm(blob, path):
    parts, pos = [], 2
    while len(parts) < 3:
        while pos < len(blob) and blob[pos:pos + 1].isspace():
            pos += 1
        if blob[pos:pos + 1] == b"#":
            pos = blob.index(b"\n", pos) + 1
            continue
        end = pos
        while end < len(blob) and not blob[end:end + 1].isspace():
            end += 1
        parts.append(int(blob[pos:end]))
        pos = end
    w, h, maxval = parts
    ch = 1 if blob[:2] == b"P5" else 3
    pix = np.frombuffer(blob[pos + 1:pos + 1 + w * h * ch], np.uint8)
    if maxval != 255 or pix.size != w * h * ch:
        raise ValueError(f"read_image: '{path}' must be an 8-bit binary PGM/PPM of {w}x{h}; it is truncated or "
                         f"has maxval {maxval}.")
    return pix.reshape(h, w, ch)


def read_image(path):
    """An image file as uint8 (C, H, W): PNG (8-bit grey/RGB/RGBA; alpha dropped) or binary PGM/PPM."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_image: path must be an existing image file; got '{path}'.")
    blob = path.read_bytes()
    if blob[:8] == b"\x89PNG\r\n\x1a\n":
        img = _read_png(blob, path)
    elif blob[:2] in (b"P5", b"P6"):
        img = _read_pnm(blob, path)
    else:
        raise ValueError(f"read_image: '{path}' must be a PNG, PGM or PPM file (or use a .npy array).")
    return np.ascontiguousarray(img.transpose(2, 0, 1))
