"""DataLoader: NumPy batches in a seeded, per-epoch order.

The order and the augmentation of epoch k depend only on (seed, k): each epoch
builds its own Generators from ``numpy.random.SeedSequence([seed, k])`` (one for
the permutation, one for the transforms), so resuming at epoch k with
``set_epoch(k)`` reproduces that epoch without replaying the earlier ones.
(Same NumPy version assumed: NumPy does not promise identical Generator streams
across releases.)
"""
from __future__ import annotations

import numpy as np

from .._checks import as_int, fail
from .dataset import ArrayDataset, check_bool

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a dataset in batches ``(x, y)`` of NumPy arrays.

    Parameters
    ----------
    dataset : ArrayDataset or any object with ``__len__`` and ``__getitem__(i) -> (x, y)``
        An :class:`ArrayDataset` is batched with one fancy-index per array and
        its transform applied to the whole batch; other datasets are read item
        by item and stacked.
    batch_size : int
        Samples per batch, >= 1.
    shuffle : bool
        A new permutation every epoch; otherwise dataset order.
    drop_last : bool
        Drop the last batch when it is smaller than ``batch_size``.
    seed : int or None
        Seeds the order and the random transforms. ``None`` draws a fresh seed
        (kept in ``loader.seed``, so a run can still be repeated).
    transform : callable t(x, rng) or None
        Applied to every batch after the dataset's own transform.

    Every ``iter(loader)`` runs the epoch ``loader.epoch`` and then advances it
    by one; ``set_epoch(k)`` chooses the next epoch. ``y`` is int64.

    >>> from convkit.data import ArrayDataset
    >>> ds = ArrayDataset(np.arange(10).reshape(10, 1), np.arange(10))
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
    >>> len(loader), [len(y) for _, y in loader]
    (3, [4, 4, 2])
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None):
        op = "DataLoader"
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            fail(op, "dataset", "an object with __len__ and __getitem__", dataset, TypeError)
        self.dataset = dataset
        self.batch_size = as_int(op, "batch_size", batch_size, minimum=1)
        self.shuffle = check_bool(op, "shuffle", shuffle)
        self.drop_last = check_bool(op, "drop_last", drop_last)
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else as_int(op, "seed", seed, minimum=0)
        if transform is not None and not callable(transform):
            fail(op, "transform", "None or a callable t(x, rng)", transform, TypeError)
        self.transform = transform
        self.epoch = 0

    def __len__(self):
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch):
        """Make the next ``iter(loader)`` run epoch ``epoch`` (>= 0)."""
        self.epoch = as_int("DataLoader.set_epoch", "epoch", epoch, minimum=0)

    def _generators(self, epoch):
        shuffle_seq, augment_seq = np.random.SeedSequence([self.seed, epoch]).spawn(2)
        return np.random.default_rng(shuffle_seq), np.random.default_rng(augment_seq)

    def indices(self, epoch=None):
        """The sample order of ``epoch`` (default: the next one), before batching."""
        epoch = self.epoch if epoch is None else as_int("DataLoader.indices", "epoch", epoch, minimum=0)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return self._generators(epoch)[0].permutation(n)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self._epoch(epoch)

    def _epoch(self, epoch):
        order = self.indices(epoch)
        rng = self._generators(epoch)[1]
        fast = isinstance(self.dataset, ArrayDataset)
        b = self.batch_size
        for k in range(len(self)):
            idx = order[k * b:(k + 1) * b]
            if fast:
                x, y = self.dataset.batch(idx, rng)
            else:
                x, y = self._stack(idx)
            if self.transform is not None:
                x = self.transform(x, rng)
            yield x, y

    def _stack(self, idx):
        xs, ys = [], []
        for i in idx:
            x, y = self.dataset[int(i)]
            xs.append(np.asarray(x))
            ys.append(y)
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    def __repr__(self):
        return (f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch})")
