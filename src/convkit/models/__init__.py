"""Ready-made networks: the classic MNIST CNN, LeNet-5, a digits CNN, CIFAR ResNets, and an all-conv FCN.

``get_model(name, **kwargs)`` builds one by name (what ``convkit train --model`` uses);
:func:`summary` lists each layer's output shape, parameters and multiply-accumulates.

>>> from convkit import models
>>> net = models.get_model("digits_cnn")
>>> sum(p.numel() for p in net.parameters())
30762
"""
from .cnn import digits_cnn, fcn, lenet5, mnist_cnn
from .resnet import resnet8, resnet20
from .summary import summary

MODELS = {"digits_cnn": digits_cnn, "mnist_cnn": mnist_cnn, "lenet5": lenet5, "resnet8": resnet8,
          "resnet20": resnet20, "fcn": fcn}


def get_model(name, **kwargs):
    """The model called ``name`` (one of :data:`MODELS`), built with ``kwargs``."""
    if name not in MODELS:
        raise ValueError(f"get_model: name must be one of {sorted(MODELS)}; got name={name!r}.")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "get_model", "summary", "digits_cnn", "mnist_cnn", "lenet5", "resnet8", "resnet20", "fcn"]
