"""Training under faults: non-finite losses (NaN and inf data, a diverging learning rate) stop training
with the epoch and step and keep the last good checkpoint; a run is bitwise reproducible."""
import json

import numpy as np
import pytest

import convkit
from convkit import data, nn, optim
from convkit.train import TrainingError, fit, load_checkpoint
from convkit.train.run import train_run


def tiny():
    convkit.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


class Batches:
    """Digits in fixed batches; ``poison`` = (epoch, step, value) puts value into one pixel of that batch."""

    def __init__(self, poison=None, n=256, batch=64):
        ds = data.digits(True, data.ToFloat(16))
        self.x, self.y = ds.batch(np.arange(n))
        self.batch, self.poison, self.epoch = batch, poison, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.x) // self.batch

    def __iter__(self):
        for i in range(len(self)):
            x = self.x[i * self.batch:(i + 1) * self.batch].copy()
            if self.poison and (self.epoch + 1, i + 1) == self.poison[:2]:
                x[5, 0, 3, 3] = self.poison[2]
            yield x, self.y[i * self.batch:(i + 1) * self.batch]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_data_stops_with_epoch_and_step_and_keeps_checkpoint(tmp_path, value):
    net = tiny()
    opt = optim.Adam(net.parameters(), lr=1e-3)
    path = tmp_path / "c.npz"
    with pytest.raises(TrainingError, match=r"the loss became (nan|inf) at epoch 2, step 3; stopped before "
                                            r"updating the weights; the last good checkpoint is '.*c\.npz'\."):
        fit(net, Batches(poison=(2, 3, value)), None, 3, opt, checkpoint=path, progress=False)
    state = load_checkpoint(path)
    assert (state["epoch"], state["step"]) == (1, 0)  # the end of epoch 1, the last good state
    assert all(np.isfinite(v).all() for v in net.state_dict().values())
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def linear():
    """A linear classifier: no ReLU to die, so a huge step sends float32 logits to inf."""
    convkit.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_diverging_learning_rate_stops_and_keeps_the_last_epoch(tmp_path):
    net = linear()
    opt = optim.SGD(net.parameters(), lr=0.05)
    sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=1e39)  # epoch 2 diverges
    path = tmp_path / "c.npz"
    with pytest.raises(TrainingError, match=r"at epoch 2, step \d+; stopped before updating") as info:
        fit(net, Batches(), None, 4, opt, scheduler=sched, checkpoint=path, progress=False)
    assert "the last good checkpoint is" in str(info.value)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(np.isfinite(v).all() for v in state["model"].values())


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_before_any_checkpoint_writes_nothing(tmp_path):
    net = linear()
    opt = optim.SGD(net.parameters(), lr=1e38)
    with pytest.raises(TrainingError, match=r"at epoch 1, step \d+"):
        fit(net, Batches(), None, 2, opt, checkpoint=tmp_path / "c.npz", progress=False)
    assert list(tmp_path.iterdir()) == []


def _run(tmp_path, name, seed, threads):
    old = convkit.num_threads()
    convkit.set_num_threads(threads)
    try:
        train_run("digits", "digits_cnn", epochs=2, batch_size=128, seed=seed, out=tmp_path / name, progress=False,
                  log=lambda s: None)
    finally:
        convkit.set_num_threads(old)
    metrics = json.loads((tmp_path / name / "metrics.json").read_text())
    for e in metrics["epochs"]:
        e.pop("seconds")
    return metrics, load_checkpoint(tmp_path / name / "checkpoint.npz")


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, f"{prefix}/{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _flat(v, f"{prefix}[{i}]")
    else:
        yield prefix, tree


def test_same_seed_and_threads_give_a_bitwise_identical_run(tmp_path):
    m1, c1 = _run(tmp_path, "a", 7, 2)
    m2, c2 = _run(tmp_path, "b", 7, 2)
    assert m1 == m2  # every loss and accuracy, as exact floats
    f1, f2 = dict(_flat(c1)), dict(_flat(c2))
    f1.pop("/history", None)
    assert f1.keys() == f2.keys()
    arrays = 0
    for k, v in f1.items():
        if k.startswith("/history"):
            continue
        if isinstance(v, np.ndarray):
            arrays += 1
            assert v.dtype == f2[k].dtype and v.tobytes() == f2[k].tobytes(), k
        else:
            assert v == f2[k] or (v != v and f2[k] != f2[k]), k
    assert arrays >= 8  # weights, biases and the optimizer's moments were all compared
    m3, _ = _run(tmp_path, "c", 8, 2)
    assert m3["epochs"] != m1["epochs"]  # the comparison can fail: another seed gives other numbers


def test_non_finite_weights_after_a_finite_loss_are_never_saved(tmp_path):
    """An update that overflows (finite loss, inf weights) at the last step of epoch 2: the epoch's
    checkpoint is not written over the good one of epoch 1."""
    net = tiny()
    opt = optim.Adam(net.parameters(), lr=1e-3)
    calls = {"n": 0}
    step = opt.step

    def overflowing_step():
        step()
        calls["n"] += 1
        if calls["n"] == 8:  # epoch 2, step 4 of 4
            net[3].weight.data[0, 0] = np.inf

    opt.step = overflowing_step
    path = tmp_path / "c.npz"
    with pytest.raises(TrainingError, match=r"fit: 3\.weight became non-finite by epoch 2, step 4; stopped without "
                                            r"saving it; the last good checkpoint is"):
        fit(net, Batches(), None, 3, opt, checkpoint=path, progress=False)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and all(np.isfinite(v).all() for v in state["model"].values())
