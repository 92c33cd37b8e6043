"""How do gradients flow back through a convolution?

For y = conv(x, w) (a correlation, stride S, no padding) and a loss L with
g = dL/dy:

- dL/dx is the FULL correlation of g with the kernel rotated by 180 degrees,
  summed over filters: pad g by F-1 on every side and correlate. For S > 1,
  first dilate g by the stride (put S-1 zeros between its entries), because
  the forward pass skipped those positions.
- dL/dw is the correlation of the input x with g (g dilated by S when S > 1),
  summed over the batch.

Both are ordinary convolutions, built here by hand with F.conv and checked
against F.conv_vjp, and one weight's gradient is checked by finite differences.
(A 7x7 input with a 3x3 kernel and stride 2 tiles exactly; when a stride does
not tile, the input cells no window read get zero gradient, so pad the hand-built
grad_x at the end to the input size.)
"""
import numpy as np

import convkit.functional as F

rng = np.random.default_rng(7)
x = rng.standard_normal((1, 2, 7, 7))          # (N, C, H, W)
w = rng.standard_normal((3, 2, 3, 3))          # (K, C, kh, kw)
kh, kw = w.shape[2:]


def dilate(g, s):
    """Insert s-1 zeros between neighbouring entries of the spatial dims of g (N, K, oh, ow)."""
    n, k, oh, ow = g.shape
    out = np.zeros((n, k, (oh - 1) * s + 1, (ow - 1) * s + 1))
    out[:, :, ::s, ::s] = g
    return out


def grad_x_by_hand(g, w, s):
    gd = dilate(g, s)
    gp = np.pad(gd, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))   # full correlation
    w_rot = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)                        # rotate 180, swap K and C
    return F.conv(gp, w_rot)                                                 # (N, C, H, W)


def grad_w_by_hand(x, g, s):
    # Batch and channels swap roles: each input channel correlated with each (dilated) output map.
    gw = F.conv(x.transpose(1, 0, 2, 3), g.transpose(1, 0, 2, 3), dilation=s)   # (C, K, kh, kw)
    return gw.transpose(1, 0, 2, 3)


for s in (1, 2):
    y = F.conv(x, w, stride=s)
    g = rng.standard_normal(y.shape)
    gx, gw, _ = F.conv_vjp(g, x, w, stride=s)
    gx_hand, gw_hand = grad_x_by_hand(g, w, s), grad_w_by_hand(x, g, s)
    dx, dw = np.max(np.abs(gx - gx_hand)), np.max(np.abs(gw - gw_hand))
    print(f"stride {s}: x {x.shape} -> y {y.shape}")
    if s > 1:
        print(f"  g {g.shape} dilated by {s} -> {dilate(g, s).shape}")
    gname = "g" if s == 1 else "dilated g"
    print(f"  grad_x: pad {gname} by {kh - 1}, correlate with rotated w: {gx_hand.shape}; "
          f"max |hand - conv_vjp| = {dx:.1e}")
    print(f"  grad_w: correlate x with {gname}: {gw_hand.shape}; max |hand - conv_vjp| = {dw:.1e}")
    if not (np.allclose(gx, gx_hand, atol=1e-12) and np.allclose(gw, gw_hand, atol=1e-12)):
        raise SystemExit(f"stride {s}: hand-built gradients differ from conv_vjp ({dx}, {dw})")
    # The input gradient is exactly the transposed convolution of g with the same weight.
    gx_t = F.conv_transpose(g, w, stride=s)
    if not np.allclose(gx, gx_t, atol=1e-12):
        raise SystemExit(f"stride {s}: grad_x is not conv_transpose(g, w)")
    print(f"  grad_x equals F.conv_transpose(g, w, stride={s}) (max diff {np.max(np.abs(gx - gx_t)):.1e})")

# Finite differences for one weight: L(w) = sum(conv(x, w, stride=2) * g).
s = 2
g = rng.standard_normal(F.conv(x, w, stride=s).shape)
_, gw, _ = F.conv_vjp(g, x, w, stride=s)
idx, eps = (1, 0, 2, 1), 1e-6
w_plus, w_minus = w.copy(), w.copy()
w_plus[idx] += eps
w_minus[idx] -= eps
fd = (np.sum(F.conv(x, w_plus, stride=s) * g) - np.sum(F.conv(x, w_minus, stride=s) * g)) / (2 * eps)
print(f"\nfinite difference dL/dw{list(idx)} = {fd:.8f};  conv_vjp = {gw[idx]:.8f};  "
      f"|diff| = {abs(fd - gw[idx]):.1e}")
if not np.isclose(fd, gw[idx], rtol=1e-6, atol=1e-8):
    raise SystemExit(f"finite difference {fd} disagrees with conv_vjp {gw[idx]}")
print("OK: conv gradients are convolutions (rotated kernel for x, input with g for w)")
