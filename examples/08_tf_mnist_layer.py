"""How do I run a TensorFlow-layout MNIST layer in convkit?

TensorFlow/Keras store images as NHWC (N, 28, 28, 1) and conv kernels as HWIO
(5, 5, 1, 32); convkit, like PyTorch, uses NCHW and OIHW weights. The layer
here is the classic first MNIST block: conv 5x5, 32 filters, SAME padding,
ReLU, then 2x2 max-pool, (N, 28, 28, 1) -> (N, 14, 14, 32).

Two ways give the same numbers:
- stay channels last: F.conv(..., data_format="channels_last") with the kernel
  converted by convkit.layout.hwio_to_oihw;
- convert the input to channels first, compute, convert back.
"""
import numpy as np

import convkit.functional as F
from convkit.layout import hwio_to_oihw, to_channels_first, to_channels_last

rng = np.random.default_rng(8)
N = 4
images = rng.random((N, 28, 28, 1))                        # NHWC, as tf.data would hand them over
kernel = rng.standard_normal((5, 5, 1, 32)) * 0.2          # HWIO, as in a Keras Conv2D
bias = rng.standard_normal(32) * 0.1

weight = hwio_to_oihw(kernel)                               # (32, 1, 5, 5)
print(f"images {images.shape} (N, H, W, C); TF kernel {kernel.shape} (H, W, I, O) "
      f"-> convkit weight {weight.shape} (O, I, H, W)")
print(f"parameters: 5*5*1*32 + 32 = {kernel.size + bias.size}")

# Channels last all the way through the conv; SAME keeps 28x28 at stride 1.
h = F.conv(images, weight, bias, padding="same", data_format="channels_last")
h = np.maximum(h, 0)                                        # ReLU
print(f"conv 5x5 SAME + ReLU, channels last: {h.shape}")

# Max-pool works channels first, so convert around it.
pooled = to_channels_last(F.max_pool2d(to_channels_first(h), kernel_size=2))
print(f"2x2 max-pool (stride 2): {pooled.shape} = (N, 14, 14, 32)")
if pooled.shape != (N, 14, 14, 32):
    raise SystemExit(f"expected ({N}, 14, 14, 32); got {pooled.shape}")

# Cross-check 1: the same layer computed channels first.
x_cf = to_channels_first(images)                            # (N, 1, 28, 28)
h_cf = np.maximum(F.conv(x_cf, weight, bias, padding="same"), 0)
pooled_cf = F.max_pool2d(h_cf, 2)                          # (N, 32, 14, 14)
d1 = np.max(np.abs(to_channels_last(pooled_cf) - pooled))
print(f"channels-first route {pooled_cf.shape} -> channels last; max diff {d1:.1e}")
if d1 > 1e-12:
    raise SystemExit(f"channels-last and channels-first layers differ by {d1}")

# Cross-check 2: a 2x2/2 max-pool that tiles is a reshape and a max over each 2x2 block.
blocks = h_cf.reshape(N, 32, 14, 2, 14, 2).max(axis=(3, 5))
d2 = np.max(np.abs(pooled_cf - blocks))
print(f"max-pool vs reshape-and-max over 2x2 blocks: max diff {d2:.1e}")
if d2 > 0:
    raise SystemExit(f"F.max_pool2d differs from the 2x2 block maximum by {d2}")

# Cross-check 3: "same" for a 5x5 kernel at stride 1 is 2 cells of zeros on every side.
h_pad = np.maximum(F.conv(x_cf, weight, bias, padding=2), 0)
if not np.allclose(h_pad, h_cf, atol=1e-12):
    raise SystemExit("padding='same' differs from padding=2 for a 5x5 kernel at stride 1")
print("SAME padding for 5x5 at stride 1 is padding=2: same result")
print(f"OK: TF layout (N, 28, 28, 1) with HWIO kernel -> (N, 14, 14, 32), with N = {N}")
