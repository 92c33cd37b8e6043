"""What does a filter do across depth?

A filter always spans every input channel. On the depth-2 input M below, a
1x1 filter with one weight per channel, [2, 3], gives each output pixel as
2*(channel 0 value) + 3*(channel 1 value). One filter makes one map; K
filters make K maps.
"""
import numpy as np

import convkit.functional as F

M = np.array([[[1., 2.], [3., 4.]],          # channel 0
              [[5., 6.], [7., 8.]]])         # channel 1   -> M is (C=2, H=2, W=2)
f = np.array([2., 3.])                       # one weight per channel
w = f.reshape(1, 2, 1, 1)                    # (K=1, C=2, 1, 1)

y = F.conv(M, w)                             # unbatched: (C, H, W) -> (K, H, W)
print(f"M {M.shape} is (C, H, W); the filter is (C, 1, 1) = (2, 1, 1) with weights {f.tolist()}")
print(f"as a weight array it is {w.shape}: (K, C, 1, 1) with K=1 filter")
for i in range(2):
    for j in range(2):
        a, b = M[0, i, j], M[1, i, j]
        print(f"  out[{i},{j}] = {a:g}*{f[0]:g} + {b:g}*{f[1]:g} = {f[0] * a + f[1] * b:g}")
print(f"output {y.shape}: {y[0].tolist()}")

expected = np.array([[17., 22.], [27., 32.]])
if not np.array_equal(y[0], expected):
    raise SystemExit(f"expected {expected.tolist()}; got {y[0].tolist()}")

# K = 3 filters: three weight pairs, three output maps stacked as channels.
W3 = np.array([[2., 3.], [1., 0.], [1., -1.]]).reshape(3, 2, 1, 1)
y3 = F.conv(M, W3)
print(f"\nK=3 filters {W3.shape} -> output {y3.shape}: one map per filter")
for k in range(3):
    wk = W3[k, :, 0, 0]
    print(f"  filter {k} {wk.tolist()}: {y3[k].tolist()}")
    if not np.array_equal(y3[k], wk[0] * M[0] + wk[1] * M[1]):
        raise SystemExit(f"filter {k} map is not {wk[0]:g}*M[0] + {wk[1]:g}*M[1]")
if y3.shape != (3, 2, 2):
    raise SystemExit(f"expected 3 maps of 2x2; got {y3.shape}")
print("OK: each filter sums across depth; K filters give K maps")
