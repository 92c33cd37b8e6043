"""Why does my dense layer fail when the image size changes, and what does a fully convolutional network do instead?

A Linear layer has a fixed number of inputs: mnist_cnn flattens its last
feature map, 64 x 7 x 7 = 3136 numbers for a 28x28 image, into a 3136 -> 1024
layer. A 36x36 image gives 64 x 9 x 9 = 5184 numbers, and the layer cannot take
them. Convolutions have no such limit: they slide over whatever they are given.
convkit.models.fcn replaces the dense head with a 7x7 convolution that covers
the 7x7 map of a 28x28 image exactly, so at 28x28 it gives one prediction, and
on a larger image it gives a map of predictions, one per 28x28 window, 4 pixels
apart (the product of the two pooling strides).
"""
import numpy as np

import convkit
from convkit import models, shapes

convkit.manual_seed(0)
dense = models.mnist_cnn().eval()
fcn = models.fcn().eval()
small = np.zeros((1, 1, 28, 28), np.float32)
large = np.zeros((1, 1, 36, 36), np.float32)

print(f"mnist_cnn on 28x28: {dense(small).shape}")
try:
    dense(large)
    raise SystemExit("expected the dense head to reject a 36x36 image")
except ValueError as e:
    print(f"mnist_cnn on 36x36 fails: {e}")
print("  64 x 9 x 9 = 5184 inputs reach a layer built for 64 x 7 x 7 = 3136")

y_small, y_large = fcn(small), fcn(large)
print(f"fcn on 28x28: {y_small.shape} (one prediction)")
print(f"fcn on 36x36: {y_large.shape} (a 3x3 map of predictions: (36 - 28)/4 + 1 = 3)")
if y_small.shape != (1, 10) or y_large.shape != (1, 10, 3, 3):
    raise SystemExit(f"unexpected shapes {y_small.shape}, {y_large.shape}")

# Where does each map cell look? The receptive field of the stack, first layer first.
rf = shapes.receptive_field([3, {"kernel_size": 2, "stride": 2}, 3, {"kernel_size": 2, "stride": 2}, 7], ndim=2)
print(f"receptive field of one output cell: {rf.size[0]}x{rf.size[1]} pixels, neighbours {rf.jump[0]} pixels apart")
if rf.jump != (4, 4):
    raise SystemExit(f"expected a jump of 4; got {rf.jump}")

# The head swap keeps the parameter count small: no 3136 x 1024 matrix.
n_dense = sum(p.numel() for p in dense.parameters())
n_fcn = sum(p.numel() for p in fcn.parameters())
print(f"parameters: mnist_cnn {n_dense:,}, fcn {n_fcn:,}")
print("OK: the dense head needs one input size; the all-convolutional one takes any size >= 28x28")
