"""convkit.optim against torch.optim: the same parameters, gradients and steps give the same numbers.

Also: float32 stays float32, state_dict round trips (through npz + JSON), errors, param groups,
zero_grad, and every scheduler's lr sequence against torch's.
"""
import copy
import io
import itertools
import json
import re

import numpy as np
import pytest

import convkit
from convkit.optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    Optimizer,
    RMSprop,
    SequentialLR,
    StepLR,
    lr_scheduler,
)

SHAPES = [(3, 4), (5,), ()]
STEPS = 10


def _torch():
    return pytest.importorskip("torch")


def _data(seed, steps=STEPS):
    rng = np.random.default_rng(seed)
    init = [np.asarray(rng.standard_normal(s)) for s in SHAPES]
    grads = [[np.asarray(rng.standard_normal(s)) for s in SHAPES] for _ in range(steps)]
    grads[3][1] = None  # a parameter without a gradient is skipped (and its step count does not move)
    return init, grads


def _ck_params(init, dtype=np.float64):
    return [convkit.tensor(a.astype(dtype), requires_grad=True) for a in init]


def _run_ck(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = None if g is None else convkit.tensor(g.astype(p.dtype))
        opt.step()


def _run_torch(cls_name, init, grads, kwargs, dtype):
    torch = _torch()
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    params = [torch.tensor(a, dtype=tdtype, requires_grad=True) for a in init]
    opt = getattr(torch.optim, cls_name)(params, **kwargs)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = None if g is None else torch.tensor(g, dtype=tdtype)
        opt.step()
    return [p.detach().numpy() for p in params], opt


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


SGD_CASES = [dict(c, **extra) for c in _grid(weight_decay=[0, 0.05], maximize=[False, True])
             for extra in [dict(momentum=0), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
                           dict(momentum=0.8, nesterov=True)]]
ADAM_CASES = _grid(amsgrad=[False, True], weight_decay=[0, 0.05], maximize=[False, True],
                   betas=[(0.9, 0.999), (0.3, 0.8)])
RMSPROP_CASES = _grid(centered=[False, True], momentum=[0, 0.5], weight_decay=[0, 0.05], maximize=[False, True],
                      alpha=[0.99, 0.3])
CASES = ([("SGD", SGD, c) for c in SGD_CASES] + [("Adam", Adam, c) for c in ADAM_CASES]
         + [("AdamW", AdamW, c) for c in ADAM_CASES] + [("RMSprop", RMSprop, c) for c in RMSPROP_CASES])


def _case_id(case):
    name, _, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("index", range(len(CASES)), ids=[_case_id(c) for c in CASES])
def test_matches_torch_float64(index):
    name, cls, kwargs = CASES[index]
    kwargs = dict(kwargs, lr=0.05)
    init, grads = _data(seed=index)
    params = _ck_params(init)
    opt = cls(params, **kwargs)
    _run_ck(opt, params, grads)
    expected, _ = _run_torch(name, init, grads, kwargs, np.float64)
    for p, e in zip(params, expected):
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.data, e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,cls,kwargs", [("SGD", SGD, dict(momentum=0.9, nesterov=True, weight_decay=0.1)),
                                             ("Adam", Adam, dict(amsgrad=True, weight_decay=0.1)),
                                             ("AdamW", AdamW, dict(amsgrad=True)),
                                             ("RMSprop", RMSprop, dict(centered=True, momentum=0.5))])
def test_float32_stays_float32(name, cls, kwargs):
    init, grads = _data(seed=7)
    params = _ck_params(init, np.float32)
    opt = cls(params, lr=0.01, **kwargs)
    _run_ck(opt, params, grads)
    expected, _ = _run_torch(name, init, grads, dict(kwargs, lr=0.01), np.float32)
    for p, e in zip(params, expected):
        assert p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, e, rtol=2e-5, atol=1e-6)
    for entry in opt.state.values():
        for v in entry.values():
            assert not isinstance(v, np.ndarray) or v.dtype == np.float32


@pytest.mark.parametrize("index", range(0, len(CASES), 3), ids=[_case_id(c) for c in CASES[::3]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_update_is_bitwise_the_whole_array_update(monkeypatch, index, dtype):
    """A parameter larger than a block is updated in cache-sized blocks on threads: same bits as one pass."""
    from convkit.optim import optimizer

    name, cls, kwargs = CASES[index]
    rng = np.random.default_rng(index)
    shapes = [(37, 29), (1000,), ()]
    init = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(3)]
    results = []
    for block_bytes in (1 << 30, 808):  # one block; blocks of 101 float64 / 202 float32 elements (ragged)
        monkeypatch.setattr(optimizer, "_BLOCK_BYTES", block_bytes)
        params = _ck_params(init, dtype)
        _run_ck(cls(params, lr=0.05, **kwargs), params, grads)
        results.append([p.data.copy() for p in params])
    for a, b in zip(*results):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b, strict=True)


def test_grad_of_other_dtype_and_untouched_grad():
    p = convkit.tensor(np.ones(3, np.float32), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    p.grad = convkit.tensor(g.copy())  # float64 grad on a float32 parameter
    SGD([p], lr=0.1, weight_decay=0.5, maximize=True).step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, 1 + 0.1 * (g - 0.5), rtol=1e-6)
    np.testing.assert_array_equal(p.grad.data, g)  # the update never writes into the gradient


def test_step_closure_returns_loss():
    w = convkit.tensor(np.array([2.0]), requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with convkit.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert float(loss) == 4.0
    np.testing.assert_allclose(w.data, [1.0])


# ---------------------------------------------------------------------------- param groups, zero_grad

def test_param_groups_with_different_lrs_match_torch():
    torch = _torch()
    init, grads = _data(seed=3)
    params = _ck_params(init)
    opt = SGD([{"params": params[:2], "lr": 0.1}, {"params": params[2:], "momentum": 0.5}], lr=0.01, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]
    _run_ck(opt, params, grads)
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    topt = torch.optim.SGD([{"params": tp[:2], "lr": 0.1}, {"params": tp[2:], "momentum": 0.5}], lr=0.01,
                           momentum=0.9)
    for gs in grads:
        for p, g in zip(tp, gs):
            p.grad = None if g is None else torch.tensor(g)
        topt.step()
    for p, q in zip(params, tp):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_add_param_group_and_single_tensor_group():
    a, b = _ck_params([np.ones(2), np.ones(3)])
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "betas": [0.5, 0.6]})
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["betas"] == (0.5, 0.6) and opt.param_groups[1]["lr"] == 0.1
    with pytest.raises(ValueError, match="only once across all param groups"):
        opt.add_param_group({"params": [a]})
    assert len(opt.param_groups) == 2


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    a, b = _ck_params([np.ones(2), np.ones(3)])
    a.grad = convkit.tensor(np.array([1.0, 2.0]))
    held = a.grad
    opt = SGD([a, b], lr=0.1)
    opt.zero_grad(set_to_none=set_to_none)
    assert b.grad is None
    if set_to_none:
        assert a.grad is None
    else:
        assert a.grad is held
        np.testing.assert_array_equal(a.grad.data, [0.0, 0.0])


# ---------------------------------------------------------------------------- state_dict

def _check_plain(obj, path="sd"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)) and not isinstance(k, bool), f"{path}: key {k!r}"
            _check_plain(v, f"{path}[{k!r}]")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_plain(v, f"{path}[{i}]")
    else:
        assert obj is None or type(obj) in (str, int, float, bool, np.ndarray), f"{path}: {type(obj).__name__}"


def _npz_json_round_trip(sd):
    """What a checkpoint writer does: arrays into an npz, everything else into JSON (int keys become str)."""
    arrays = {}

    def strip(obj):
        if isinstance(obj, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = obj
            return {"__ndarray__": key}
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    text = json.dumps(strip(sd))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    loaded = np.load(buf, allow_pickle=False)

    def put(obj):
        if isinstance(obj, dict):
            if set(obj) == {"__ndarray__"}:
                return loaded[obj["__ndarray__"]]
            return {k: put(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [put(v) for v in obj]
        return obj

    return put(json.loads(text))


RESUME_CASES = [(SGD, dict(lr=0.1, momentum=0.9, nesterov=True)), (SGD, dict(lr=0.1)),
                (Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)), (AdamW, dict(lr=0.01)),
                (RMSprop, dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1))]


@pytest.mark.parametrize("through_files", [False, True])
@pytest.mark.parametrize("cls,kwargs", RESUME_CASES, ids=[c.__name__ + str(i) for i, (c, _) in
                                                          enumerate(RESUME_CASES)])
def test_state_dict_resume_equals_uninterrupted(cls, kwargs, through_files):
    init, grads = _data(seed=11)
    straight = _ck_params(init)
    opt = cls([{"params": straight[:1]}, {"params": straight[1:], "lr": 0.003}], **kwargs)
    _run_ck(opt, straight, grads)

    first = _ck_params(init)
    opt1 = cls([{"params": first[:1]}, {"params": first[1:], "lr": 0.003}], **kwargs)
    _run_ck(opt1, first, grads[:5])
    sd = opt1.state_dict()
    _check_plain(sd)
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    if through_files:
        sd = _npz_json_round_trip(sd)
    resumed = [convkit.tensor(p.data.copy(), requires_grad=True) for p in first]
    opt2 = cls([{"params": resumed[:1]}, {"params": resumed[1:]}], lr=0.5)  # hyperparameters come from sd
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.003
    _run_ck(opt2, resumed, grads[5:])
    for p, q in zip(straight, resumed):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_contents_and_copies():
    p, = _ck_params([np.ones(3)])
    opt = Adam([p], lr=0.1, amsgrad=True)
    p.grad = convkit.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert type(sd["state"][0]["step"]) is int and sd["state"][0]["step"] == 1
    assert sd["param_groups"][0]["betas"] == [0.9, 0.999]
    sd["state"][0]["exp_avg"][:] = 123.0  # the saved arrays are copies
    assert not np.any(opt.state[p]["exp_avg"] == 123.0)


def test_load_state_dict_accepts_0d_steps_str_keys_and_torch_state_dicts():
    torch = _torch()
    init, grads = _data(seed=5)
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    topt = torch.optim.Adam(tp, lr=0.01, amsgrad=True)
    for gs in grads[:5]:
        for p, g in zip(tp, gs):
            p.grad = None if g is None else torch.tensor(g)
        topt.step()
    params = [convkit.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tp]
    opt = Adam(params)
    opt.load_state_dict(topt.state_dict())  # step is a float32 0-d tensor there
    assert type(opt.state[params[0]]["step"]) is int and opt.state[params[0]]["step"] == 5
    assert opt.param_groups[0]["amsgrad"] is True and opt.param_groups[0]["lr"] == 0.01
    _run_ck(opt, params, grads[5:])
    for gs in grads[5:]:
        for p, g in zip(tp, gs):
            p.grad = None if g is None else torch.tensor(g)
        topt.step()
    for p, q in zip(params, tp):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-14)

    sd = opt.state_dict()
    sd["state"] = {str(k): dict(v, step=np.array(v["step"])) for k, v in sd["state"].items()}
    fresh = Adam(_ck_params(init))
    fresh.load_state_dict(sd)
    assert [type(s["step"]) for s in fresh.state.values()] == [int] * 3


# ---------------------------------------------------------------------------- errors

def _p(shape=(2,)):
    return convkit.tensor(np.ones(shape), requires_grad=True)


CONSTRUCT_ERRORS = [
    (lambda: SGD([_p()], lr=-1), ValueError, "SGD: lr must be >= 0; got lr=-1."),
    (lambda: SGD([_p()], lr="0.1"), TypeError, "SGD: lr must be a real number; got lr='0.1'."),
    (lambda: SGD([_p()], lr=float("nan")), ValueError, "SGD: lr must be a finite number"),
    (lambda: SGD([_p()], momentum=-0.5), ValueError, "SGD: momentum must be >= 0; got momentum=-0.5."),
    (lambda: SGD([_p()], weight_decay=-1e-4), ValueError, "weight_decay must be >= 0"),
    (lambda: SGD([_p()], nesterov=True), ValueError, "SGD: momentum must be > 0 when nesterov=True; got momentum=0."),
    (lambda: SGD([_p()], momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "SGD: dampening must be 0 when nesterov=True; got dampening=0.1."),
    (lambda: SGD([_p()], nesterov="yes"), TypeError, "SGD: nesterov must be a bool"),
    (lambda: Adam([_p()], betas=(1.0, 0.999)), ValueError, "Adam: betas[0] must be in [0, 1); got betas[0]=1.0."),
    (lambda: Adam([_p()], betas=(0.9, -0.1)), ValueError, "Adam: betas[1] must be in [0, 1); got betas[1]=-0.1."),
    (lambda: Adam([_p()], betas=0.9), TypeError, "Adam: betas must be a pair (beta1, beta2); got betas=0.9."),
    (lambda: Adam([_p()], eps=-1e-8), ValueError, "Adam: eps must be >= 0"),
    (lambda: AdamW([_p()], weight_decay=-0.01), ValueError, "AdamW: weight_decay must be >= 0"),
    (lambda: AdamW([_p()], lr=-0.1), ValueError, "AdamW: lr must be >= 0; got lr=-0.1."),
    (lambda: RMSprop([_p()], alpha=-0.9), ValueError, "RMSprop: alpha must be >= 0"),
    (lambda: RMSprop([_p()], momentum=-1), ValueError, "RMSprop: momentum must be >= 0"),
    (lambda: RMSprop([_p()], eps=-1), ValueError, "RMSprop: eps must be >= 0"),
    (lambda: SGD([], lr=0.1), ValueError, "SGD: params must be a non-empty list"),
    (lambda: SGD(_p(), lr=0.1), TypeError, "got a single Tensor"),
    (lambda: SGD({_p()}, lr=0.1), TypeError, "not a set"),
    (lambda: SGD([np.ones(2)], lr=0.1), TypeError, "every parameter must be a Tensor"),
    (lambda: SGD([_p() * 2], lr=0.1), ValueError, "must be a leaf Tensor"),
    (lambda: SGD([{"params": [_p()], "lr": -3}], lr=0.1), ValueError, "SGD: lr must be >= 0; got lr=-3."),
    (lambda: SGD([{"lr": 0.1}]), ValueError, "must have a 'params' key"),
]


@pytest.mark.parametrize("make,exc,message", CONSTRUCT_ERRORS, ids=[m for _, _, m in CONSTRUCT_ERRORS])
def test_constructor_errors(make, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        make()


def test_duplicate_parameter_across_groups():
    p = _p()
    with pytest.raises(ValueError, match=r"appear only once.*param_groups\[1\]\['params'\]\[0\]"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_grad_shape_mismatch():
    p = _p((2,))
    p.grad = convkit.tensor(np.ones(3))
    with pytest.raises(ValueError, match=re.escape("grad.shape=(3,)")):
        SGD([p], lr=0.1).step()


def _trained_adam():
    a, b = _p((2, 3)), _p((4,))
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = convkit.tensor(np.ones((2, 3))), convkit.tensor(np.ones(4))
    opt.step()
    return opt


def _mutate(fn):
    def make():
        sd = _trained_adam().state_dict()
        fn(sd)
        return sd
    return make


LOAD_ERRORS = [
    (_mutate(lambda sd: sd["param_groups"].pop()), ValueError,
     "Adam.load_state_dict: len(param_groups) must be 2 (the optimizer's group count); got len(param_groups)=1."),
    (_mutate(lambda sd: sd["param_groups"][1]["params"].append(7)), ValueError,
     ("len(param_groups[1]['params']) must be 1 (the size of the optimizer's group 1); "
      "got len(param_groups[1]['params'])=2.")),
    (_mutate(lambda sd: sd["state"][0].__setitem__("exp_avg", np.zeros((3, 2)))), ValueError,
     "state[0]['exp_avg'].shape must equal the parameter's shape (2, 3); got state[0]['exp_avg'].shape=(3, 2)."),
    (_mutate(lambda sd: sd["state"][1].pop("exp_avg_sq")), ValueError, "missing ['exp_avg_sq']"),
    (_mutate(lambda sd: sd["state"][1].__setitem__("step", 1.5)), ValueError,
     "state[1]['step'] must be a whole number >= 0"),
    (_mutate(lambda sd: sd["state"][1].__setitem__("step", -1)), ValueError, "got state[1]['step']=-1."),
    (_mutate(lambda sd: sd["state"].__setitem__(5, sd["state"][0])), ValueError, "got state key 5"),
    (_mutate(lambda sd: sd["param_groups"][0].__setitem__("lr", -1.0)), ValueError,
     "Adam.load_state_dict (param_groups[0]): lr must be >= 0; got lr=-1.0."),
    (_mutate(lambda sd: sd["param_groups"][1].__setitem__("params", [0])), ValueError,
     "indices must be unique"),
    (_mutate(lambda sd: sd.pop("state")), ValueError, "must have keys 'state' and 'param_groups'"),
    (lambda: [1, 2], TypeError, "state_dict must be a dict"),
]


@pytest.mark.parametrize("make,exc,message", LOAD_ERRORS, ids=[m for _, _, m in LOAD_ERRORS])
def test_load_state_dict_errors_leave_optimizer_unchanged(make, exc, message):
    opt = _trained_adam()
    opt.param_groups[0]["lr"] = 0.25
    before = opt.state_dict()
    state_ids = {id(p): id(entry) for p, entry in opt.state.items()}
    with pytest.raises(exc, match=re.escape(message)):
        opt.load_state_dict(make())
    after = opt.state_dict()
    assert {id(p): id(entry) for p, entry in opt.state.items()} == state_ids
    assert after["param_groups"] == before["param_groups"]
    for k in before["state"]:
        for key, v in before["state"][k].items():
            np.testing.assert_array_equal(after["state"][k][key], v)


# ---------------------------------------------------------------------------- schedulers vs torch

def _opt_pair(kind="SGD"):
    torch = _torch()
    ck_groups = [{"params": [_p()], "lr": 0.1}, {"params": [_p()], "lr": 0.02}]
    th_groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                 {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.02}]
    if kind == "SGD":
        return SGD(ck_groups, lr=0.5, momentum=0.9), torch.optim.SGD(th_groups, lr=0.5, momentum=0.9)
    return Adam(ck_groups, lr=0.5), torch.optim.Adam(th_groups, lr=0.5)


SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=6),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=30),
    "OneCycleLR-linear-3phase": lambda m, o: m.OneCycleLR(o, max_lr=0.4, epochs=3, steps_per_epoch=10,
                                                          anneal_strategy="linear", three_phase=True, pct_start=0.25),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.4, total_steps=30, cycle_momentum=False,
                                                        div_factor=10.0, final_div_factor=100.0),
    "Sequential-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=25)], milestones=[5]),
    "Sequential-three": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=3), m.StepLR(o, step_size=3, gamma=0.5),
            m.MultiStepLR(o, milestones=[2, 5])], milestones=[4, 12]),
}


def _trace(module, opt, make, steps=30):
    sched = make(module, opt)
    out = [[(g["lr"], g.get("momentum"), g.get("betas", (None,))[0]) for g in opt.param_groups]]
    last = [list(sched.get_last_lr())]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append([(g["lr"], g.get("momentum"), g.get("betas", (None,))[0]) for g in opt.param_groups])
        last.append(list(sched.get_last_lr()))
    return out, last, sched


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_scheduler_matches_torch(name, kind):
    torch = _torch()
    ck_opt, th_opt = _opt_pair(kind)
    ours, our_last, _ = _trace(lr_scheduler, ck_opt, SCHEDULES[name])
    theirs, their_last, _ = _trace(torch.optim.lr_scheduler, th_opt, SCHEDULES[name])
    assert np.allclose(np.array(ours, dtype=float), np.array(theirs, dtype=float), rtol=1e-13, atol=0,
                       equal_nan=True), (ours, theirs)
    np.testing.assert_allclose(our_last, their_last, rtol=1e-13)
    assert [g["initial_lr"] for g in ck_opt.param_groups] == [g["initial_lr"] for g in th_opt.param_groups]


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "OneCycleLR-cos",
                                  "Sequential-warmup-cosine"])
def test_scheduler_state_dict_resume(name):
    _torch()  # _opt_pair builds a torch twin
    opt, _ = _opt_pair()
    full, _, _ = _trace(lr_scheduler, opt, SCHEDULES[name], steps=20)

    opt1, _ = _opt_pair()
    sched1 = SCHEDULES[name](lr_scheduler, opt1)
    for _ in range(8):
        opt1.step()
        sched1.step()
    sd_opt, sd_sched = _npz_json_round_trip(opt1.state_dict()), _npz_json_round_trip(sched1.state_dict())
    _check_plain(sched1.state_dict())

    opt2, _ = _opt_pair()
    sched2 = SCHEDULES[name](lr_scheduler, opt2)  # construct first, then load (as torch advises)
    opt2.load_state_dict(sd_opt)
    sched2.load_state_dict(sd_sched)
    rest = []
    for _ in range(12):
        opt2.step()
        sched2.step()
        rest.append([(g["lr"], g.get("momentum"), g.get("betas", (None,))[0]) for g in opt2.param_groups])
    assert rest == full[9:]


def test_scheduler_sets_initial_lr_and_is_reexported():
    opt = SGD([_p()], lr=0.3)
    sched = StepLR(opt, step_size=2)
    assert opt.param_groups[0]["initial_lr"] == 0.3 and sched.base_lrs == [0.3] and sched.last_epoch == 0
    assert isinstance(sched, LRScheduler) and lr_scheduler.StepLR is StepLR
    assert issubclass(SGD, Optimizer)


def test_onecycle_past_total_steps_raises():
    opt = SGD([_p()], lr=0.1)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()


def _sequential(opt, other, milestones):
    """SequentialLR over StepLR(opt) then StepLR(other or opt)."""
    return SequentialLR(opt, [StepLR(opt, 2), StepLR(other or opt, 3)], milestones=milestones)


SCHED_ERRORS = [
    (lambda: StepLR(object(), step_size=2), TypeError, "StepLR: optimizer must be a convkit.optim.Optimizer"),
    (lambda: StepLR(SGD([_p()]), step_size=0), ValueError, "StepLR: step_size must be >= 1; got step_size=0."),
    (lambda: MultiStepLR(SGD([_p()]), milestones=[2, "x"]), TypeError, "milestones must be an int"),
    (lambda: CosineAnnealingLR(SGD([_p()]), T_max=0), ValueError, "T_max must be >= 1"),
    (lambda: LinearLR(SGD([_p()]), start_factor=0), ValueError, "start_factor must be in (0, 1]; got start_factor=0."),
    (lambda: LinearLR(SGD([_p()]), end_factor=2), ValueError, "end_factor must be in [0, 1]"),
    (lambda: OneCycleLR(SGD([_p()]), max_lr=0.1), ValueError, "total_steps, or both epochs and steps_per_epoch"),
    (lambda: OneCycleLR(SGD([_p()]), max_lr=0.1, total_steps=5, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be 'cos' or 'linear'"),
    (lambda: OneCycleLR(SGD([_p()]), max_lr=[0.1, 0.2], total_steps=5), ValueError, "len(max_lr) must be 1"),
    (lambda: OneCycleLR(SGD([_p()]), max_lr=0.1, total_steps=5, pct_start=1.5), ValueError, "pct_start must be in"),
    (lambda: _sequential(SGD([_p()]), None, []), ValueError,
     "len(milestones) must be len(schedulers) - 1 = 1; got len(milestones)=0."),
    (lambda: _sequential(SGD([_p()]), SGD([_p()]), [3]), ValueError,
     "got schedulers[1] (StepLR) built on another optimizer"),
]


@pytest.mark.parametrize("make,exc,message", SCHED_ERRORS, ids=[m for _, _, m in SCHED_ERRORS])
def test_scheduler_errors(make, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        make()


def test_scheduler_load_state_dict_rejects_unknown_keys():
    sched = StepLR(SGD([_p()]), step_size=2)
    sd = copy.deepcopy(sched.state_dict())
    sd["bogus"] = 1
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]"):
        sched.load_state_dict(sd)


@pytest.mark.parametrize("make", [lambda p: convkit.optim.Adam(p, lr=1e-3),
                                  lambda p: convkit.optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: convkit.optim.RMSprop(p, lr=1e-3, momentum=0.9)])
def test_running_averages_are_cleared_of_subnormal_numbers(make):
    """A momentum decaying under zero gradients would sit in float32's subnormal range (every op on it
    15-30x slower on x86) for about 200 steps; the optimizers flush such entries to zero."""
    w = convkit.tensor(np.ones(64, np.float32), requires_grad=True)
    opt = make([w])
    tiny = np.finfo(np.float32).tiny
    w.grad = convkit.tensor(np.full(64, 1.0, np.float32))
    opt.step()
    w.grad = convkit.tensor(np.zeros(64, np.float32))
    seen = 0
    for step in range(2, 1201):
        opt.step()
        if step % 16 == 0:
            for v in opt.state[w].values():
                if isinstance(v, np.ndarray):
                    seen += int(((v != 0) & (np.abs(v) < tiny)).sum())
    assert seen == 0


def test_flush_subnormals_keeps_everything_else():
    from convkit.optim.optimizer import flush_subnormals_
    a = np.array([1e-39, -1e-40, 1e-3, np.nan, np.inf, -np.inf, 0.0, 2e-38, -5.0], np.float32)
    out = flush_subnormals_(a.copy())
    np.testing.assert_array_equal(out, np.array([0, 0, 1e-3, np.nan, np.inf, -np.inf, 0, 2e-38, -5.0], np.float32))
    b = np.array([5e-324, 1.0])
    np.testing.assert_array_equal(flush_subnormals_(b), [0.0, 1.0])
