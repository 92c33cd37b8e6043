"""Data sets, batch transforms and a seeded DataLoader, all NumPy.

- :func:`digits`: the 8x8 handwritten digits bundled with convkit (UCI,
  E. Alpaydin and C. Kaynak, CC BY 4.0; see ``DIGITS_LICENSE.txt``), pixels 0..16.
- :func:`mnist`, :func:`fashion_mnist`: the IDX files (raw or gzip); :func:`read_idx` for any IDX file.
- :func:`cifar10`: the binary or python batches, pickles read by :class:`SafeUnpickler`.
- :class:`ArrayDataset` holds (images, labels); :class:`DataLoader` batches it.
- :mod:`convkit.data.transforms`: callables ``t(x, rng)`` on whole batches.

>>> from convkit.data import digits, DataLoader, ToFloat
>>> loader = DataLoader(digits(transform=ToFloat(16)), batch_size=32, shuffle=True, seed=0)
>>> x, y = next(iter(loader))
>>> x.shape, x.dtype, y.dtype, float(x.max()) <= 1.0
((32, 1, 8, 8), dtype('float32'), dtype('int64'), True)
"""
from . import transforms
from ._digits import DIGITS_SCALE, digits
from .cifar import CIFAR10_CLASSES, SafeUnpickler, cifar10, read_cifar_batch, safe_unpickle
from .dataset import ArrayDataset
from .image import read_image
from .idx import FASHION_MNIST_CLASSES, MNIST_CLASSES, fashion_mnist, mnist, read_idx
from .loader import DataLoader
from .transforms import Compose, Lambda, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat

__all__ = [
    "ArrayDataset", "DataLoader",
    "digits", "mnist", "fashion_mnist", "cifar10", "read_idx", "read_cifar_batch",
    "safe_unpickle", "SafeUnpickler", "read_image",
    "DIGITS_SCALE", "MNIST_CLASSES", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
    "transforms", "Compose", "Lambda", "ToFloat", "Normalize", "RandomCrop", "RandomHorizontalFlip",
]
