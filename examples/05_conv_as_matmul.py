"""How is a convolution one matrix product?

Two ways, both exact:

1. im2col: copy every window of the input into a column (F.unfold); then the
   convolution is the (K, C*kh*kw) weight matrix times the (C*kh*kw, L) column
   matrix. This is how convkit computes it.
2. Toeplitz: fix the kernel and the input size; then the convolution is a
   sparse matrix T with y.ravel() = T @ x.ravel(). For 2-D, T is "doubly
   blocked Toeplitz": a Toeplitz pattern of blocks, each block itself a
   Toeplitz matrix built from one kernel row. With several channels and
   filters, T is a grid of such matrices, one per (filter, channel) pair.
   Its transpose T.T is the transposed convolution.
"""
import numpy as np

import convkit.functional as F

rng = np.random.default_rng(5)

# ---- 1. im2col: unfold, then one GEMM
x = rng.standard_normal((1, 3, 6, 6))
w = rng.standard_normal((4, 3, 3, 3))
cols = F.unfold(x, kernel_size=3)                      # (N, C*kh*kw, L) = (1, 27, 16)
y_gemm = (w.reshape(4, -1) @ cols[0]).reshape(1, 4, 4, 4)
y = F.conv(x, w)
d1 = np.max(np.abs(y_gemm - y))
print("1. im2col")
print(f"   x {x.shape}, w {w.shape}: unfold(x) is {cols.shape} (N, C*kh*kw, windows)")
print(f"   w.reshape(4, 27) @ cols[0] -> (4, 16) -> reshape {y_gemm.shape}; max |that - F.conv| = {d1:.1e}")
if d1 > 1e-12:
    raise SystemExit(f"im2col @ weights differs from F.conv by {d1}")


# ---- 2. The Toeplitz matrix of a 3x3 kernel on a 4x4 input
def toeplitz_row(krow, n_in):
    """(n_out, n_in) matrix that correlates a length-n_in signal with krow (no padding)."""
    n_out = n_in - len(krow) + 1
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        m[o, o:o + len(krow)] = krow
    return m


def doubly_blocked(kernel, h, w_):
    """T with conv(x, kernel).ravel() = T @ x.ravel() for one channel, one filter, x (h, w_)."""
    kh, kw = kernel.shape
    oh, ow = h - kh + 1, w_ - kw + 1
    t = np.zeros((oh * ow, h * w_))
    for i in range(oh):                 # block row i: output row i
        for u in range(kh):             # it reads input row i + u through kernel row u
            t[i * ow:(i + 1) * ow, (i + u) * w_:(i + u + 1) * w_] = toeplitz_row(kernel[u], w_)
    return t


img = np.arange(16.).reshape(4, 4)
ker = np.arange(1., 10.).reshape(3, 3)
T = doubly_blocked(ker, 4, 4)
y_t = T @ img.ravel()
y_c = F.conv(img[None, None], ker[None, None])[0, 0]
print("\n2. Toeplitz, 1 channel: x = arange(16) as 4x4, kernel = 1..9 as 3x3")
print(f"   T is {T.shape} (output pixels, input pixels); its 2x4 grid of 2x4 blocks:")
print("   " + np.array2string(T.astype(int), max_line_width=120).replace("\n", "\n   "))
print(f"   T @ x.ravel() = {y_t.tolist()};  F.conv = {y_c.ravel().tolist()}")
if not np.array_equal(y_t, y_c.ravel()):
    raise SystemExit("T @ x.ravel() differs from F.conv")

# The transpose of T is the transposed convolution (the input gradient of conv).
g = np.array([1., -1., 2., 0.5])
back = (T.T @ g).reshape(4, 4)
back_ct = F.conv_transpose(g.reshape(1, 1, 2, 2), ker[None, None])[0, 0]
print(f"   T.T @ g equals F.conv_transpose(g): max diff {np.max(np.abs(back - back_ct)):.1e}")
if not np.allclose(back, back_ct, atol=1e-12):
    raise SystemExit("T.T @ g differs from F.conv_transpose")

# ---- 3. Two channels, two filters: a 2x2 grid of Toeplitz matrices
x2 = rng.integers(-2, 3, size=(2, 4, 4)).astype(float)       # (C=2, 4, 4)
w2 = rng.integers(-1, 2, size=(2, 2, 3, 3)).astype(float)    # (K=2, C=2, 3, 3)
T2 = np.block([[doubly_blocked(w2[k, c], 4, 4) for c in range(2)] for k in range(2)])
y2_t = T2 @ x2.ravel()                                       # channels stacked: [x_c0; x_c1]
y2_c = F.conv(x2, w2)                                        # (K, 2, 2)
print("\n3. Toeplitz, 2 channels and 2 filters: T = [[T(w00), T(w01)], [T(w10), T(w11)]]")
print(f"   T is {T2.shape} = (K*4 outputs, C*16 inputs); row k sums over channels c:")
print("   " + np.array2string(T2.astype(int), max_line_width=160).replace("\n", "\n   "))
print(f"   T @ x.ravel() = {y2_t.tolist()}")
print(f"   F.conv        = {y2_c.ravel().tolist()}")
if not np.array_equal(y2_t, y2_c.ravel()):
    raise SystemExit("block Toeplitz matrix differs from F.conv")
print("OK: convolution is a matrix product, by im2col or by a (block) Toeplitz matrix")
