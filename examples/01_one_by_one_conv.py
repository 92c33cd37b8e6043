"""Why is a 1x1 convolution just a matrix product?

A 1x1 filter sees one pixel at a time, but all 192 of its channels. Each of
the 32 filters is a weighted sum over depth, so the whole layer is the
(H*W, 192) @ (192, 32) product applied to every pixel at once: 28x28x192
in, 28x28x32 out.
"""
import numpy as np

import convkit.functional as F

rng = np.random.default_rng(0)
H, W, C, K = 28, 28, 192, 32

x = rng.standard_normal((1, C, H, W))        # one image, channels first
w = rng.standard_normal((K, C, 1, 1))        # 32 filters, each 1x1x192
y = F.conv(x, w)

print(f"input   {x.shape}  (N, C, H, W) = 28x28x{C}")
print(f"weight  {w.shape}  (K, C, 1, 1): {K} filters, each 1x1x{C}")
print(f"output  {y.shape}  (N, K, H, W) = 28x28x{K}")

params = w.size
macs = H * W * C * K
print(f"parameters: {K}*{C}*1*1 = {params} weights (+{K} biases = {params + K})")
print(f"MACs: H*W*C*K = {H}*{W}*{C}*{K} = {macs:,}")

# The same layer as one matrix product: pixels are rows, channels are columns.
pixels = x[0].reshape(C, H * W).T            # (H*W, C) = (784, 192)
mixing = w.reshape(K, C).T                    # (C, K)   = (192, 32)
y_mat = pixels @ mixing                       # (784, 32)
print(f"matrix form: {pixels.shape} @ {mixing.shape} = {y_mat.shape}")

y_back = y_mat.T.reshape(1, K, H, W)
diff = np.max(np.abs(y - y_back))
print(f"max |conv - matmul| = {diff:.2e}")
if y.shape != (1, K, H, W):
    raise SystemExit(f"expected output (1, {K}, {H}, {W}); got {y.shape}")
if params != 6144 or macs != 4_816_896:
    raise SystemExit(f"parameter or MAC count is off: {params}, {macs}")
if not np.allclose(y, y_back, rtol=1e-12, atol=1e-10):
    raise SystemExit(f"1x1 conv and matmul differ by {diff}")
print("OK: a 1x1 convolution is (H*W, C) @ (C, K)")
