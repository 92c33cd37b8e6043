"""How big is the output of a convolution?

    out = floor((W - F + 2P) / S) + 1

W input size, F kernel size, P padding per side, S stride. With dilation D
the kernel covers F_eff = D*(F-1) + 1 cells, so F becomes F_eff; with
unequal padding, 2P becomes P_lo + P_hi. "valid" means P = 0; "same" (TF's
SAME) pads just enough that out = ceil(W / S), any odd cell going at the end.

When (W - F + 2P) / S is not a whole number, the last window does not fit
and is dropped (floor). convkit.shapes.conv_output_shape(..., strict=True)
refuses such a layer instead, showing the arithmetic.
"""
import numpy as np

import convkit.functional as F
from convkit.shapes import conv_output_shape, resolve_padding

rng = np.random.default_rng(6)

cases = [  # (W, F, padding, S, D, what)
    (32, 3, "valid", 1, 1, "valid: no padding"),
    (32, 3, "same", 1, 1, "same, stride 1"),
    (28, 5, 2, 1, 1, "P = (F-1)/2 keeps the size"),
    (227, 11, 0, 4, 1, "AlexNet conv1"),
    (32, 3, 1, 2, 1, "stride 2 halves it"),
    (7, 4, "same", 2, 1, "same, stride 2, even kernel"),
    (32, 3, 2, 1, 2, "dilation 2: F_eff = 5"),
    (28, 5, 0, 2, 1, "does not tile: floor"),
]

print(f"{'W':>4} {'F':>3} {'padding':>8} {'S':>2} {'D':>2}  {'(W - F_eff + P_lo + P_hi)/S + 1':<32} "
      f"{'out':>4} {'F.conv':>10}  note")
for w, f, p, s, d, what in cases:
    (lo, hi), = resolve_padding(p, (w,), f, s, d)
    fe = d * (f - 1) + 1
    exact = (w - fe + lo + hi) / s + 1
    out, = conv_output_shape((w,), f, s, p, d)
    y = F.conv(rng.standard_normal((1, 1, w, w)), np.ones((1, 1, f, f)), stride=s, padding=p, dilation=d)
    expr = f"({w} - {fe} + {lo} + {hi})/{s} + 1 = {exact:g}"
    print(f"{w:>4} {f:>3} {p!s:>8} {s:>2} {d:>2}  {expr:<32} {out:>4} {str(y.shape[2:]):>10}  {what}")
    if out != int(np.floor(exact)) or y.shape[2:] != (out, out):
        raise SystemExit(f"W={w}, F={f}, P={p}, S={s}, D={d}: formula {exact:g}, shapes {out}, F.conv {y.shape}")
    if p == "same" and out != -(-w // s):
        raise SystemExit(f"'same' must give ceil(W/S) = {-(-w // s)}; got {out}")

print("\nstrict=True refuses a stride that does not tile the input:")
try:
    conv_output_shape((28, 28), 5, stride=2, padding=0, strict=True)
except ValueError as e:
    msg = str(e)
    print(f"  ValueError: {msg}")
else:
    raise SystemExit("strict mode accepted W=28, F=5, P=0, S=2")
if "12.5" not in msg:
    raise SystemExit(f"the strict-mode message should show 12.5; got {msg!r}")
print("  without strict the last column of windows is dropped: "
      f"conv_output_shape((28, 28), 5, stride=2) = {conv_output_shape((28, 28), 5, stride=2)}")
print("OK: every row of the formula matches the shape F.conv returns")
