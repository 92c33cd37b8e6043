"""ArrayDataset: images and labels held as two arrays, indexed one sample or a whole batch at once."""
from __future__ import annotations

import operator

import numpy as np

from .._checks import fail

__all__ = ["ArrayDataset"]


def check_bool(op, name, value):
    if not isinstance(value, (bool, np.bool_)):
        fail(op, name, "a bool", value, TypeError)
    return bool(value)


class ArrayDataset:
    """Samples ``(images[i], labels[i])``, with an optional batch transform on the images.

    Parameters
    ----------
    images : ndarray, shape (N, ...)
        Usually (N, C, H, W) uint8 as read from disk; kept as given (not copied).
    labels : array-like of ints, shape (N,)
        Stored as int64.
    transform : callable t(x, rng) or None
        Applied to batches of images (see :mod:`convkit.data.transforms`);
        a single sample goes through it as a batch of one.
    classes : sequence of str or None
        Class names, ``classes[label]``.

    ``dataset[i]`` gives ``(image, label)``; random transforms then use a fresh
    unseeded Generator. For reproducible augmentation, go through
    :class:`~convkit.data.DataLoader` with a seed, or call :meth:`batch` with a Generator.

    >>> ds = ArrayDataset(np.zeros((4, 1, 2, 2), np.uint8), [0, 1, 0, 1], classes=["a", "b"])
    >>> len(ds), int(ds[1][1]), ds.batch([0, 3])[0].shape
    (4, 1, (2, 1, 2, 2))
    """

    def __init__(self, images, labels, transform=None, classes=None):
        op = "ArrayDataset"
        if not isinstance(images, np.ndarray):
            images = np.asarray(images)
        if images.ndim < 1:
            fail(op, "images.ndim", ">= 1 (N, ...)", images.ndim)
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"{op}: labels must be 1-D (N,); got labels.shape={labels.shape}.")
        if labels.size and labels.dtype.kind not in "iu":
            raise TypeError(f"{op}: labels must have an integer dtype; got labels.dtype={labels.dtype}.")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{op}: images and labels must have the same length N; "
                             f"got images.shape={images.shape}, labels.shape={labels.shape}.")
        if transform is not None and not callable(transform):
            fail(op, "transform", "None or a callable t(x, rng)", transform, TypeError)
        if classes is not None:
            classes = tuple(classes)
            if not all(isinstance(c, str) for c in classes):
                fail(op, "classes", "None or a sequence of str", classes, TypeError)
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.transform = transform
        self.classes = classes

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"ArrayDataset: index must be an int (use .batch for many); "
                            f"got index={i!r}.") from None
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"ArrayDataset: index must be in [-{n}, {n}); got index={i}.")
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x[None], None)[0]
        return x, self.labels[i]

    def batch(self, indices, rng=None):
        """The batch ``(x, y)`` at ``indices``: one fancy-index per array, then the transform.

        ``rng`` (a ``numpy.random.Generator``) feeds random transforms.
        """
        idx = np.asarray(indices, dtype=np.intp)
        x = self.images[idx]
        if self.transform is not None:
            x = self.transform(x, rng)
        return x, self.labels[idx]

    def __repr__(self):
        return (f"ArrayDataset(n={len(self)}, images={self.images.shape[1:]} {self.images.dtype}, "
                f"transform={self.transform!r})")
