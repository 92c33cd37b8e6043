"""Is a "3x3" filter on an RGB image really 3x3?

No: a filter always spans every input channel, so on an RGB image a "3x3"
filter is 3x3x3 = 27 weights. 32 such filters give 32 output maps and
3*3*3*32 weights + 32 biases = 896 parameters. One output value is the sum
of the 27 products of the filter with the 3x3x3 block under it, plus a bias.
"""
import numpy as np

import convkit.functional as F

rng = np.random.default_rng(3)
img = rng.integers(0, 256, size=(1, 3, 8, 8)).astype(np.float64) / 255   # (N, RGB, H, W)
w = rng.standard_normal((32, 3, 3, 3)) * 0.1                             # (K, C, kh, kw)
b = rng.standard_normal(32) * 0.1

y = F.conv(img, w, b)
n_params = w.size + b.size
print(f"image {img.shape}, weight {w.shape}: each filter has 3*3*3 = {w[0].size} weights")
print(f"output {y.shape}: {y.shape[1]} maps of {y.shape[2]}x{y.shape[3]}")
print(f"parameters: 3*3*3*32 + 32 = {w.size} + {b.size} = {n_params}")
if w[0].size != 27 or n_params != 896 or y.shape != (1, 32, 6, 6):
    raise SystemExit(f"counts are off: {w[0].size} weights per filter, {n_params} parameters, output {y.shape}")

# Output of filter k at (i, j), by hand over the 27 products.
k, i, j = 5, 2, 4
block = img[0, :, i:i + 3, j:j + 3]                                      # (3, 3, 3) under the window
print(f"\nby hand: y[0, {k}, {i}, {j}] = b[{k}] + sum over c, u, v of w[{k}, c, u, v] * x[c, {i}+u, {j}+v]")
total = b[k]
for c, name in enumerate("RGB"):
    terms = [w[k, c, u, v] * block[c, u, v] for u in range(3) for v in range(3)]
    total += sum(terms)
    print(f"  {name}: 9 products summing to {sum(terms):+.6f}")
print(f"  bias {b[k]:+.6f}")
print(f"  27 products + bias = {total:.6f};  F.conv gives {y[0, k, i, j]:.6f}")
if not np.isclose(total, y[0, k, i, j], rtol=1e-12, atol=1e-12):
    raise SystemExit(f"hand sum {total} differs from F.conv {y[0, k, i, j]}")
print("OK: a 3x3 filter on RGB is 3x3x3; 32 of them cost 896 parameters")
