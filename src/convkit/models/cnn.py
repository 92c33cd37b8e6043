"""Plain CNNs: the TensorFlow MNIST tutorial network, LeNet-5, a small digits CNN, and an FCN.

Every constructor takes ``in_channels`` and ``num_classes`` so one model
serves MNIST, Fashion-MNIST and the 8x8 digits alike.
"""
from __future__ import annotations

from .. import nn


def mnist_cnn(in_channels=1, num_classes=10, input_size=28):
    """Conv 5x5 32 same + ReLU + pool 2, conv 5x5 64 same + ReLU + pool 2, Linear 1024 + ReLU,
    dropout 0.5, Linear num_classes: the classic TensorFlow MNIST tutorial network.

    Shape: (N, in_channels, 28, 28) -> (N, num_classes); flatten is 64 * 7 * 7 = 3136.
    """
    side = input_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side * side, 1024), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(1024, num_classes))


def lenet5(in_channels=1, num_classes=10):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for 28x28 inputs (the first conv pads by 2,
    giving the original 32x32 geometry): conv 5x5 6, pool, conv 5x5 16, pool, 120, 84, num_classes."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes))


def digits_cnn(in_channels=1, num_classes=10):
    """A small CNN for the 8x8 digits (the default of ``convkit train``):
    [conv 3x3 + BatchNorm + ReLU] x2 (32 channels) + pool 2 (4x4), conv 3x3 64 + BatchNorm + ReLU + pool 2 (2x2),
    flatten 256, dropout 0.25, Linear num_classes."""
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(in_channels, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 2 * 2, num_classes))


def fcn(in_channels=1, num_classes=10, width=32, head="conv"):
    """An all-convolutional classifier with no Linear layer: it accepts any input at least its
    receptive field (28x28 for the default), so a dense layer's fixed input size is gone.

    head="conv": the last conv's 7x7 kernel covers the 7x7 feature map of a 28x28 input, so a
    28x28 image gives (N, num_classes, 1, 1) -- flattened to (N, num_classes) -- and a larger
    image gives a spatial map of class scores (N, num_classes, H', W'), one per 28x28 window
    (stride 4). head="gap": a 1x1 conv then global average pooling gives (N, num_classes) for
    every input size.
    """
    if head not in ("conv", "gap"):
        raise ValueError(f"fcn: head must be 'conv' or 'gap'; got head={head!r}.")
    body = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    if head == "conv":
        return _FCN(nn.Sequential(*body, nn.Conv2d(2 * width, num_classes, 7)))
    return nn.Sequential(*body, nn.Conv2d(2 * width, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _FCN(nn.Sequential):
    """Sequential whose 1x1 score map is returned as (N, classes); larger maps stay spatial."""

    def forward(self, x):
        y = super().forward(x)
        return y.reshape(y.shape[0], y.shape[1]) if y.shape[-2:] == (1, 1) else y
