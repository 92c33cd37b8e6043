"""The 8x8 handwritten digits, bundled with convkit (45 KB).

Data: "Optical Recognition of Handwritten Digits", E. Alpaydin and C. Kaynak,
UCI Machine Learning Repository, 1998, https://doi.org/10.24432/C50P49,
licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). These are
the 1,797 images scikit-learn ships as ``digits.csv.gz``, stored unchanged as
``digits.npz`` with a fixed train/test split added; see ``DIGITS_LICENSE.txt``.
"""
from __future__ import annotations

import threading
from importlib import resources

import numpy as np

from .dataset import ArrayDataset, check_bool

__all__ = ["digits", "DIGITS_SCALE"]

DIGITS_SCALE = 16
"""Largest pixel value of the digits: each pixel counts ink in a 4x4 block, 0..16."""

_cache = {}
_lock = threading.Lock()


def _load():
    # double-checked: the arrays are published whole and read-only, once, whatever the threads
    if not _cache:
        with _lock:
            if not _cache:
                with resources.files(__package__).joinpath("digits.npz").open("rb") as f:
                    with np.load(f, allow_pickle=False) as z:
                        loaded = {"images": z["images"], "labels": z["labels"], "train": z["train"]}
                for a in loaded.values():
                    a.flags.writeable = False
                _cache.update(loaded)
    return _cache


def digits(train=True, transform=None):
    """The 8x8 handwritten digits: 1,438 training or 359 test images, classes "0".."9".

    Parameters
    ----------
    train : bool
        The training split (1,438 images) or the test split (359).
    transform : callable t(x, rng) or None
        Batch transform, e.g. ``ToFloat(16)`` (see below).

    The split is fixed and stored in the bundled file, so it never depends on
    the global or any NumPy random state: stratified 80/20, for each class the
    first ``round(0.2 * count)`` of a seed-0 permutation are test images (35-37
    per class). Within a split the images keep the file order.

    Pixels are raw uint8 counts **0..16** (not 0..255): scale them with
    ``ToFloat(16)`` (``ToFloat(DIGITS_SCALE)``) to get float32 in [0, 1].
    Every call returns fresh arrays.

    Shape: ``images`` (N, 1, 8, 8) uint8, ``labels`` (N,) int64.

    >>> ds = digits(train=False)
    >>> len(ds), ds.images.shape, int(ds.images.max())
    (359, (359, 1, 8, 8), 16)
    """
    d = _load()
    mask = d["train"] if check_bool("digits", "train", train) else ~d["train"]
    return ArrayDataset(d["images"][mask][:, None], d["labels"][mask], transform=transform,
                        classes=[str(c) for c in range(10)])
