"""Conv2d or Conv3d on a volume: what slides where?

Take a volume with one channel, depth 8 and 16x16 slices, (C=1, D=8, H=16, W=16),
like a short grey video clip (D = time) or a CT scan (D = slices).

- Conv3d keeps D as a spatial axis: a 3x3x3 filter slides along D, H and W,
  and the output still has a depth axis.
- Conv2d with D treated as channels: the filter spans all 8 slices at once
  (3x3x8) and slides only along H and W; depth is summed away.

Two exact links between them are checked: a Conv3d whose kernel depth is the
whole depth D equals Conv2d with D as channels, and a Conv3d with kernel depth
1 equals Conv2d applied to each slice separately.
"""
import numpy as np

import convkit.functional as F

rng = np.random.default_rng(4)
K = 4
vol = rng.standard_normal((1, 1, 8, 16, 16))         # (N, C=1, D, H, W)

w3 = rng.standard_normal((K, 1, 3, 3, 3))             # (K, C, kd, kh, kw)
y3 = F.conv3d(vol, w3)
print("Conv3d: filter slides along D, H and W")
print(f"  input {vol.shape} (N, C, D, H, W), weight {w3.shape} (K, C, kd, kh, kw), {w3.size} weights")
print(f"  output {y3.shape} (N, K, D', H', W'): D' = 8-3+1 = {y3.shape[2]}, H' = W' = 16-3+1 = {y3.shape[3]}")

as_channels = vol[:, 0]                               # (N, C=D=8, H, W)
w2 = rng.standard_normal((K, 8, 3, 3))                # (K, C=8, kh, kw)
y2 = F.conv2d(as_channels, w2)
print("Conv2d with D as channels: filter spans all 8 slices, slides along H and W")
print(f"  input {as_channels.shape} (N, C=D, H, W), weight {w2.shape} (K, C, kh, kw), {w2.size} weights")
print(f"  output {y2.shape} (N, K, H', W'): no depth axis left")
if y3.shape != (1, K, 6, 14, 14) or y2.shape != (1, K, 14, 14):
    raise SystemExit(f"unexpected output shapes {y3.shape}, {y2.shape}")

# Link 1: a Conv3d kernel as deep as the volume cannot slide in D, so it is Conv2d over D-as-channels.
y3_full = F.conv3d(vol, w2[:, None])                  # weight (K, 1, 8, 3, 3)
diff1 = np.max(np.abs(y3_full[:, :, 0] - y2))
print(f"\nConv3d with kernel (8, 3, 3) -> {y3_full.shape}; max |that - Conv2d| = {diff1:.1e}")

# Link 2: a Conv3d kernel of depth 1 is Conv2d on every slice, slices moved into the batch.
wslice = rng.standard_normal((K, 1, 1, 3, 3))
y3_thin = F.conv3d(vol, wslice)                       # (1, K, 8, 14, 14)
slices = vol[0].transpose(1, 0, 2, 3)                 # (D, C, H, W): each slice an image
y2_each = F.conv2d(slices, wslice[:, :, 0])           # (D, K, 14, 14)
diff2 = np.max(np.abs(y3_thin[0].transpose(1, 0, 2, 3) - y2_each))
print(f"Conv3d with kernel (1, 3, 3) -> {y3_thin.shape}; max |that - Conv2d per slice| = {diff2:.1e}")

if diff1 > 1e-12:
    raise SystemExit(f"Conv3d with a full-depth kernel differs from Conv2d by {diff1}")
if diff2 > 1e-12:
    raise SystemExit(f"Conv3d with a depth-1 kernel differs from per-slice Conv2d by {diff2}")
print("OK: Conv3d slides in depth too; Conv2d with depth as channels sums it away")
