"""Tensor autograd: float64 finite-difference checks of every op, graph mechanics, PyTorch parity."""
import numpy as np
import pytest

import convkit as ck
import convkit.functional as F
from helpers import directional_fd


def grad_check(fn, *arrays, rng, rtol=1e-6, atol=1e-8):
    """Backward of sum(fn(*tensors) * r) vs the directional derivative, for each input."""
    ts = [ck.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    r = rng.standard_normal(out.shape)
    (out * ck.tensor(r)).sum().backward()
    for i, (a, t) in enumerate(zip(arrays, ts)):
        d = rng.standard_normal(a.shape)

        def scalar(v, i=i):
            args = [ck.tensor(b) for b in arrays]
            args[i] = ck.tensor(v)
            return float(np.sum(fn(*args).data * r))
        np.testing.assert_allclose(float(np.sum(t.grad.data * d)), directional_fd(scalar, a, d), rtol=rtol,
                                   atol=atol, err_msg=f"input {i}")


def pos(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


UNARY = [
    ("neg", lambda a: -a, None),
    ("exp", lambda a: a.exp(), None),
    ("log", lambda a: ck.log(a), "pos"),
    ("sqrt", lambda a: a.sqrt(), "pos"),
    ("abs", lambda a: abs(a), None),
    ("clip", lambda a: a.clip(-0.3, 0.4), None),
    ("clip_min", lambda a: ck.clip(a, min=0.1), None),
    ("pow_scalar", lambda a: a ** 3, None),
    ("rpow", lambda a: 2.0 ** a, None),
    ("sum_all", lambda a: a.sum(), None),
    ("sum_axis", lambda a: a.sum(1), None),
    ("sum_keep", lambda a: a.sum(dim=(0, 2), keepdim=True), None),
    ("sum_axis_np", lambda a: a.sum(axis=-1, keepdims=True), None),
    ("mean", lambda a: a.mean((1, 2)), None),
    ("var", lambda a: a.var(1), None),
    ("var_biased", lambda a: a.var(dim=(0, 1), unbiased=False, keepdim=True), None),
    ("std", lambda a: a.std(), None),
    ("max_all", lambda a: a.max(), None),
    ("max_dim", lambda a: a.max(1).values, None),
    ("max_dim_keep", lambda a: a.max(2, keepdim=True)[0], None),
    ("min_dim", lambda a: a.min(0).values, None),
    ("amax", lambda a: a.amax((0, 2)), None),
    ("reshape", lambda a: a.reshape(4, -1), None),
    ("view", lambda a: a.view((3, 8)), None),
    ("transpose", lambda a: a.transpose(0, 2), None),
    ("permute", lambda a: a.permute(2, 0, 1), None),
    ("T", lambda a: a.T, None),
    ("flatten", lambda a: a.flatten(1), None),
    ("unsqueeze_squeeze", lambda a: a.unsqueeze(1).squeeze(1), None),
    ("index_int", lambda a: a[1], None),
    ("slice", lambda a: a[:, 1:3, ::2], None),
    ("ellipsis_none", lambda a: a[..., None, 0], None),
    ("fancy_repeat", lambda a: a[[0, 1, 0]], None),
    ("bool_mask", lambda a: a[a.data > 0], None),
    ("relu", lambda a: a.relu(), None),
    ("where", lambda a: ck.where(a.data > 0, a, a * 3), None),
]


@pytest.mark.parametrize("name,fn,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops_gradcheck(name, fn, domain, rng):
    x = pos(rng, 2, 3, 4) if domain == "pos" else rng.standard_normal((2, 3, 4))
    grad_check(fn, x, rng=rng)


BINARY = [
    ("add", lambda a, b: a + b, (2, 3, 4), (3, 1)),
    ("sub", lambda a, b: a - b, (2, 3, 4), (4,)),
    ("mul", lambda a, b: a * b, (2, 1, 4), (3, 1)),
    ("div", lambda a, b: a / b, (2, 3, 4), (1, 3, 4)),
    ("pow", lambda a, b: a ** b, (2, 3), (2, 3)),
    ("maximum", lambda a, b: ck.maximum(a, b), (2, 3, 4), (3, 4)),
    ("minimum", lambda a, b: ck.minimum(a, b), (2, 3, 4), (2, 3, 4)),
    ("matmul", lambda a, b: a @ b, (2, 3, 4), (4, 5)),
    ("matmul_batched", lambda a, b: a @ b, (2, 1, 3, 4), (3, 4, 2)),
    ("matmul_vec_right", lambda a, b: a @ b, (3, 4), (4,)),
    ("matmul_vec_left", lambda a, b: a @ b, (4,), (2, 4, 3)),
    ("matmul_dot", lambda a, b: a @ b, (4,), (4,)),
    ("cat", lambda a, b: ck.cat([a, b, a], dim=1), (2, 3), (2, 5)),
    ("stack", lambda a, b: ck.stack([a, b], dim=-1), (2, 3), (2, 3)),
]


@pytest.mark.parametrize("name,fn,sa,sb", BINARY, ids=[b[0] for b in BINARY])
def test_binary_ops_gradcheck(name, fn, sa, sb, rng):
    a, b = (pos(rng, *sa), pos(rng, *sb)) if name == "pow" else (rng.standard_normal(sa), rng.standard_normal(sb))
    grad_check(fn, a, b, rng=rng)


def test_reflected_ops_with_scalars_and_arrays(rng):
    a = rng.standard_normal((3, 4))
    grad_check(lambda t: 1 - t + 2 * t / 3 + 1 / (t * t + 1) - (t ** 2) * 0.5, a, rng=rng)
    arr = rng.standard_normal((3, 4))
    grad_check(lambda t: arr * t + arr - t / (arr * arr + 1), a, rng=rng)


def test_functional_ops_take_tensors(rng):
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)

    def net(x, w, b):
        y = F.conv2d(x, w, b, stride=1, padding="same")
        y = F.max_pool2d(y, 2, ceil_mode=True)
        return F.avg_pool2d(y, 2, padding=1)
    grad_check(net, x, w, b, rng=rng)
    grad_check(lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1), x, rng.standard_normal((3, 2, 3, 3)),
               rng=rng)
    grad_check(lambda x: F.adaptive_avg_pool2d(x, 3) + F.adaptive_max_pool2d(x, 3), x, rng=rng)
    grad_check(lambda x: F.unfold(x, 3, padding=1), x, rng=rng)
    grad_check(lambda x: F.pad(x, (1, 2, 0, 1), mode="reflect"), x, rng=rng)


def test_plain_arrays_still_give_arrays(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    y = F.conv2d(x, rng.standard_normal((3, 2, 3, 3)))
    assert type(y) is np.ndarray
    t = F.conv2d(ck.tensor(x), rng.standard_normal((3, 2, 3, 3)))
    assert isinstance(t, ck.Tensor) and not t.requires_grad


def test_conv_skips_unneeded_gradients(rng):
    x = ck.tensor(rng.standard_normal((2, 3, 6, 6)))
    w = ck.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == w.shape


@pytest.mark.parametrize("c,limit", [(2, None), (8, None), (8, 4096)])  # channels-first, channels-last, chunked
def test_conv_reuses_forward_columns_exactly_and_frees_them(rng, monkeypatch, c, limit):
    """The graph keeps the forward's im2col columns for grad_weight (not when the batch was chunked): the
    gradients are bitwise conv_vjp's, and the columns are released once backward has run."""
    import weakref

    from convkit.functional import _conv_core

    kept, real = [], _conv_core.forward

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("keep"):
            kept.append(None if out[1] is None else weakref.ref(out[1]))
        return out

    monkeypatch.setattr(_conv_core, "forward", spy)
    x, w, b = rng.standard_normal((3, c, 9, 8)), rng.standard_normal((5, c, 3, 3)), rng.standard_normal(5)
    kw = dict(padding=1, stride=(1, 2))
    ts = [ck.tensor(a, requires_grad=True) for a in (x, w, b)]
    with ck.workspace_limit(limit or ck.get_workspace_limit()):
        y = F.conv2d(*ts, **kw)
        g = rng.standard_normal(y.shape)
        (y * ck.tensor(g)).sum().backward()
        expected = F.conv_vjp(g, x, w, b, **kw)
    for t, e in zip(ts, expected):
        np.testing.assert_array_equal(t.grad.data, e)
    assert len(kept) == 1 and (kept[0] is None) == (limit is not None)
    assert kept[0] is None or kept[0]() is None


@pytest.mark.parametrize("c", [2, 8])
@pytest.mark.parametrize("wanted", [(True, False, False), (False, True, False), (False, False, True)])
def test_conv_through_tensors_with_some_gradients_wanted(rng, c, wanted):
    x, w, b = rng.standard_normal((3, c, 9, 8)), rng.standard_normal((5, c, 3, 3)), rng.standard_normal(5)
    ts = [ck.tensor(a, requires_grad=r) for a, r in zip((x, w, b), wanted)]
    y = F.conv2d(*ts, padding=1)
    np.testing.assert_array_equal(y.data, F.conv2d(x, w, b, padding=1))
    g = rng.standard_normal(y.shape)
    (y * ck.tensor(g)).sum().backward()
    for t, e, r in zip(ts, F.conv_vjp(g, x, w, b, padding=1), wanted):
        assert (t.grad is None) != r
        if r:
            np.testing.assert_array_equal(t.grad.data, e)


def test_max_pool_return_indices_through_tensor(rng):
    x = ck.tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert isinstance(idx, ck.Tensor) and idx.dtype == np.int64
    y.sum().backward()
    assert x.grad.data.sum() == 8


def test_gradients_accumulate_and_reuse(rng):
    x = ck.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 7.0])
    y = x * x  # a value used twice in one graph sums both paths
    (y + y * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 7.0] + (2 * x.data + 3 * x.data ** 2))


def test_backward_non_scalar_needs_gradient():
    x = ck.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="gradient must be given"):
        y.backward()
    y.backward(np.array([1.0, 10.0], np.float32))
    np.testing.assert_allclose(x.grad.data, [2.0, 20.0])
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3))


def test_graph_is_freed_unless_retained():
    x = ck.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_and_detach():
    x = ck.tensor([1.0, 2.0], requires_grad=True)
    with ck.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert ck.is_grad_enabled()

    @ck.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        d.sum().backward()


def test_dtype_rules():
    assert ck.tensor([1.0, 2.0]).dtype == np.float32
    assert ck.tensor([1, 2]).dtype == np.int64
    assert ck.tensor(np.ones(2)).dtype == np.float64
    t = ck.tensor([1.0], requires_grad=True)
    assert (t * 2.5).dtype == np.float32 and (2.5 / t).dtype == np.float32
    assert (ck.tensor([1, 2]) / 2).dtype == np.float32
    with pytest.raises(TypeError, match="floating-point"):
        ck.tensor([1, 2], requires_grad=True)


def test_tensor_copies_and_shares():
    a = np.ones(3, np.float32)
    t = ck.tensor(a)
    a[0] = 5
    assert t.data[0] == 1
    s = ck.as_tensor(a)
    assert s.data is a or np.shares_memory(s.data, a)
    assert t.numpy() is t.data and t.item() if t.numel() == 1 else True
    assert ck.tensor([3.5]).item() == 3.5


def test_setitem_rules():
    t = ck.tensor(np.zeros(3))
    t[1] = 4.0
    assert t.data[1] == 4.0
    p = ck.tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        p[0] = 1.0
    with ck.no_grad():
        p[0] = 1.0
    assert p.data[0] == 1.0


def test_retain_grad_on_intermediate():
    x = ck.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.data, 2 * y.data)


def test_deep_graph_has_no_recursion_limit():
    x = ck.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 0.0
    y.sum().backward()
    assert x.grad.data[0] == 1.0


def test_errors_name_the_op():
    a = ck.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="reshape: shape must keep the element count 6"):
        a.reshape(4, 2)
    with pytest.raises(IndexError, match="sum: dim must be in"):
        a.sum(5)
    with pytest.raises(ValueError, match="cat: tensors must match"):
        ck.cat([a, ck.tensor(np.ones((3, 3)))], dim=1)
    with pytest.raises(ValueError, match="item: the tensor must have one element"):
        a.item()


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((4, 5))
    ours = [ck.tensor(x, requires_grad=True), ck.tensor(w, requires_grad=True)]
    theirs = [torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)]

    def f(lib, x, w):
        y = (x @ w)
        y = y.clip(-1, 1) * y.exp() - y.max(1, keepdim=True)[0]
        return (y.var(0) + y.abs().mean() + (y ** 2).sum(1, keepdim=True).sqrt().sum() + y[:, 1:3].max()).sum()
    a, b = f(ck, *ours), f(torch, *theirs)
    a.backward()
    b.backward()
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cast_gradient_comes_back_in_source_dtype():
    x = ck.tensor(np.ones(3), requires_grad=True)
    (x.float() * 2).sum().backward()
    assert x.grad.dtype == np.float64 and np.all(x.grad.data == 2)


def test_repr():
    assert repr(ck.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(ck.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(ck.tensor([1.0], requires_grad=True) * 2)


def test_every_functional_op_has_a_gradient_binding():
    """Each public F op is either differentiable through a vjp (or a special rule) or listed as not."""
    from convkit.autograd import functional as AF

    no_gradient = {"erf"}
    missing = []
    for name in F.__all__:
        if name.endswith("_vjp") or name in no_gradient or not hasattr(getattr(F, name), "__convkit_op__"):
            continue  # not an op: the vjps themselves, and settings such as F.set_autotune
        vjp, _ = AF._vjp(name)
        if vjp is None and AF._base(name) not in AF._SPECIAL:
            missing.append(name)
    assert not missing, missing


@pytest.mark.parametrize("name,call", [
    ("cross_entropy", lambda x: F.cross_entropy(x, np.array([1, 0, 2]), label_smoothing=0.1)),
    ("log_softmax", lambda x: F.log_softmax(x, 1)),
    ("softmax", lambda x: x.softmax(1) * x),
    ("gelu", lambda x: x.gelu()),
    ("silu", lambda x: F.silu(x)),
    ("sigmoid_tanh", lambda x: x.sigmoid() + x.tanh()),
    ("leaky_relu", lambda x: x.leaky_relu(0.1)),
    ("mse", lambda x: F.mse_loss(x, ck.tensor(np.ones((3, 4))))),
    ("bce_logits", lambda x: F.binary_cross_entropy_with_logits(x, np.full((3, 4), 0.3))),
    ("layer_norm", lambda x: F.layer_norm(x, (4,))),
    ("linear", lambda x: F.linear(x, ck.tensor(np.arange(8.0).reshape(2, 4)))),
])
def test_tensor_level_losses_and_activations_gradcheck(name, call, rng):
    grad_check(call, rng.standard_normal((3, 4)), rng=rng)


def test_dropout_through_tensors_is_seeded_and_exact(rng):
    x = ck.tensor(rng.standard_normal((4, 50)), requires_grad=True)
    ck.manual_seed(7)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    ck.manual_seed(7)
    y2 = F.dropout(ck.tensor(x.data), 0.5)
    np.testing.assert_array_equal(y.data, y2.data)
    kept = y.data != 0
    np.testing.assert_allclose(x.grad.data, np.where(kept, 2.0, 0.0))
    assert F.dropout(x, 0.5, training=False) is not None


def _record_backward(t, seen):
    """Wrap t's node so that the gradients its backward returns are appended to ``seen``."""
    node = t._node
    inner = node.backward
    node.backward = lambda g: [seen.append(a) or a for a in inner(g)]


def test_leaf_takes_a_gradient_only_the_engine_holds():
    """A leaf's first gradient, made afresh by an op's backward, becomes .grad without a copy (as PyTorch's
    AccumulateGrad steals it); what the user passed, or one array handed to two leaves, is copied."""
    x = ck.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = x * 3.0
    seen = []
    _record_backward(y, seen)
    y.backward(np.ones((3, 4)))
    assert x.grad.data is seen[0]
    np.testing.assert_array_equal(x.grad.data, np.full((3, 4), 3.0))
    # the user's gradient, through a view of it: x.grad is a copy
    x.grad = None
    g = np.ones(12)
    x.reshape(12).backward(g)
    assert not np.shares_memory(x.grad.data, g)
    g[0] = 5.0
    assert x.grad.data[0, 0] == 1.0
    # the engine's own gradient (the product's), through a reshape: x takes the reshape's view of it
    x.grad = None
    h = x.reshape(12)
    seen = []
    _record_backward(h, seen)
    (h * 2.0).backward(np.ones(12))
    assert x.grad.data is seen[0] and seen[0].base is not None
    np.testing.assert_array_equal(x.grad.data, np.full((3, 4), 2.0))
    # a cat of many tensors hands out copies
    parts = [ck.tensor(np.ones(2), requires_grad=True) for _ in range(12)]
    (ck.cat(parts) * 2.0).backward(np.ones(24))
    assert all(not np.shares_memory(p.grad.data, q.grad.data) for p, q in zip(parts, parts[1:]))
    assert all(p.grad.data.base is None for p in parts)


def test_gradients_that_share_memory_are_copied():
    """An Add hands one array to both of its inputs: each leaf gets its own copy. A retained non-leaf's
    gradient is a copy too (its node passes g on)."""
    a = ck.tensor(np.ones((2, 3)), requires_grad=True)
    b = ck.tensor(np.ones((2, 3)), requires_grad=True)
    ((a + b) * 2.0).backward(np.ones((2, 3)))
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data += 1.0
    np.testing.assert_array_equal(b.grad.data, np.full((2, 3), 2.0))
    c = ck.tensor(np.ones(6), requires_grad=True)
    h = c.reshape(2, 3)
    h.retain_grad()
    (h * 2.0).backward(np.arange(6.0).reshape(2, 3))
    assert not np.shares_memory(h.grad.data, c.grad.data)
    np.testing.assert_array_equal(c.grad.data, 2.0 * np.arange(6.0))
    # a float32 leaf keeps its dtype whatever the gradient's
    e = ck.tensor(np.ones(3, np.float32), requires_grad=True)
    (e * 2.0).backward(np.ones(3))
    assert e.grad.dtype == np.float32
