"""Training: fit on the digits, checkpoints (atomic, checked), exact resume, NaN stop, Ctrl-C."""
import json
import os
import signal

import numpy as np
import pytest

import convkit
import convkit.functional as F
from convkit import data, models, nn, optim
from convkit.train import (TrainingError, TrainingInterrupted, evaluate, fit, load_checkpoint, predict,
                           save_checkpoint)


def loaders(n_train=None, seed=0, batch=64):
    train = data.digits(True, data.ToFloat(16))
    if n_train:
        train = data.ArrayDataset(train.images[:n_train], train.labels[:n_train], train.transform)
    return (data.DataLoader(train, batch_size=batch, shuffle=True, seed=seed),
            data.DataLoader(data.digits(False, data.ToFloat(16)), batch_size=256))


def tiny_model():
    """Conv + BatchNorm + dropout: every kind of state a resume must restore."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 4 * 4, 10))


def setup(seed=0, n_train=320):
    convkit.manual_seed(seed)
    net = tiny_model()
    opt = optim.Adam(net.parameters(), lr=3e-3)
    sched = optim.lr_scheduler.StepLR(opt, 1, gamma=0.7)
    tr, te = loaders(n_train, seed)
    return net, opt, sched, tr, te


def same_run(h1, h2, net1, net2):
    drop = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert drop(h1) == drop(h2)
    s1, s2 = net1.state_dict(), net2.state_dict()
    assert list(s1) == list(s2)
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k], err_msg=k)


def test_digits_cnn_trains_in_seconds():
    convkit.manual_seed(0)
    net = models.digits_cnn()
    tr, te = loaders(seed=0)
    hist = fit(net, tr, te, 4, optim.Adam(net.parameters(), lr=1e-3), progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["test_accuracy"] >= 0.93, hist
    assert set(hist[0]) >= {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"}
    ev = evaluate(net, te)
    assert ev["accuracy"] == pytest.approx(hist[-1]["test_accuracy"])
    logits = predict(net, te.dataset.batch(np.arange(10))[0], batch_size=3)
    assert logits.shape == (10, 10) and net.training


def test_same_seed_is_bitwise_identical():
    runs = []
    for _ in range(2):
        net, opt, sched, tr, te = setup(seed=3)
        runs.append((fit(net, tr, te, 2, opt, scheduler=sched, progress=False), net))
    same_run(runs[0][0], runs[1][0], runs[0][1], runs[1][1])


def test_resume_at_epoch_boundary_matches_uninterrupted(tmp_path):
    net, opt, sched, tr, te = setup()
    full = fit(net, tr, te, 3, opt, scheduler=sched, progress=False)
    net2, opt2, sched2, tr2, te2 = setup()
    fit(net2, tr2, te2, 1, opt2, scheduler=sched2, checkpoint=tmp_path / "c.npz", progress=False)
    net3, opt3, sched3, tr3, te3 = setup(seed=99)  # different init: everything must come from the checkpoint
    tr3.seed = tr.seed
    resumed = fit(net3, tr3, te3, 3, opt3, scheduler=sched3, checkpoint=tmp_path / "c.npz", resume=True,
                  progress=False)
    same_run(full, resumed, net, net3)
    assert opt3.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(tmp_path):
    net, opt, sched, tr, te = setup()
    full = fit(net, tr, te, 2, opt, scheduler=sched, progress=False)

    calls = {"n": 0}

    def loss_then_sigint(out, y):
        calls["n"] += out.requires_grad  # count training steps, not evaluation batches
        if calls["n"] == 8:  # epoch 2, step 3 (5 batches per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return F.cross_entropy(out, y)

    net2, opt2, sched2, tr2, te2 = setup()
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 3") as info:
        fit(net2, tr2, te2, 2, opt2, loss=loss_then_sigint, scheduler=sched2, checkpoint=tmp_path / "c.npz",
            progress=False)
    assert info.value.checkpoint == tmp_path / "c.npz"
    state = load_checkpoint(tmp_path / "c.npz")
    assert (state["epoch"], state["step"]) == (1, 3)
    net3, opt3, sched3, tr3, te3 = setup(seed=5)
    tr3.seed = tr.seed
    resumed = fit(net3, tr3, te3, 2, opt3, scheduler=sched3, checkpoint=tmp_path / "c.npz", resume=True,
                  progress=False)
    same_run(full, resumed, net, net3)


def test_nan_loss_stops_before_updating_and_keeps_checkpoint(tmp_path):
    net, opt, sched, tr, te = setup()
    fit(net, tr, te, 1, opt, checkpoint=tmp_path / "c.npz", progress=False)
    before = (tmp_path / "c.npz").read_bytes()
    weights = net.state_dict()
    calls = {"n": 0}

    def loss(out, y):
        calls["n"] += out.requires_grad
        return F.cross_entropy(out, y) * (float("nan") if calls["n"] == 2 else 1.0)

    with pytest.raises(TrainingError, match=r"nan at epoch 2, step 2; stopped before updating"):
        fit(net, tr, te, 2, opt, loss=loss, checkpoint=tmp_path / "c.npz", resume=True, progress=False)
    assert (tmp_path / "c.npz").read_bytes() == before
    after = net.state_dict()
    assert any(not np.array_equal(weights[k], after[k]) for k in weights)  # step 1 did train
    assert all(np.isfinite(v).all() for v in after.values())


def test_checkpoint_round_trip_types(tmp_path):
    state = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": {0: {"step": 3, "m": np.zeros(2)}},
             "c": [1, 2.5, None, "x", True], "d": np.array(7, np.int64), "nan": float("nan")}
    save_checkpoint(tmp_path / "s.npz", state)
    back = load_checkpoint(tmp_path / "s.npz")
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["a"].dtype == np.float32 and back["d"].shape == () and back["b"][0]["step"] == 3
    assert back["c"] == [1, 2.5, None, "x", True] and np.isnan(back["nan"])


def test_checkpoint_rejects_bad_files_and_changes_nothing(tmp_path):
    good = tmp_path / "c.npz"
    save_checkpoint(good, {"w": np.ones(100)})
    blob = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(blob[: len(blob) // 2])
    np.savez(tmp_path / "foreign.npz", w=np.ones(3))
    (tmp_path / "text.npz").write_text("hello")
    for name in ("trunc.npz", "foreign.npz", "text.npz"):
        with pytest.raises(ValueError, match="must be a convkit checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="existing checkpoint"):
        load_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="got object"):
        save_checkpoint(good, {"w": object()})
    assert good.read_bytes() == blob
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


def test_every_flipped_byte_is_caught_or_harmless(tmp_path):
    """A flipped byte anywhere either fails loudly or (zip timestamps, padding) leaves the contents exact."""
    good = tmp_path / "c.npz"
    state = {"w": np.arange(50.0), "meta": {"epoch": 3}}
    save_checkpoint(good, state)
    blob = good.read_bytes()
    caught = 0
    for pos in range(0, len(blob), 7):
        bad = bytearray(blob)
        bad[pos] ^= 0xFF
        (tmp_path / "f.npz").write_bytes(bytes(bad))
        try:
            back = load_checkpoint(tmp_path / "f.npz")
        except ValueError:
            caught += 1
            continue
        np.testing.assert_array_equal(back["w"], state["w"])
        assert back["meta"] == state["meta"]
    assert caught > len(blob) // 7 * 0.8


def test_model_state_with_wrong_shapes_is_refused_whole(tmp_path):
    net, opt, _, tr, te = setup()
    fit(net, tr, te, 1, opt, checkpoint=tmp_path / "c.npz", progress=False)
    other = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(ValueError, match="load_state_dict"):
        fit(other, tr, te, 2, optim.Adam(other.parameters()), checkpoint=tmp_path / "c.npz", resume=True,
            progress=False)


def test_fit_argument_errors():
    net, opt, _, tr, te = setup()
    with pytest.raises(ValueError, match="checkpoint must be a path"):
        fit(net, tr, te, 1, opt, resume=True)
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        fit(net, tr, te, -1, opt)
    with pytest.raises(ValueError, match="scheduler_interval"):
        fit(net, tr, te, 1, opt, scheduler_interval="step")


def test_metrics_json_shape(tmp_path):
    from convkit.train.run import train_run

    m = train_run("digits", "digits_cnn", epochs=1, out=tmp_path, progress=False, log=lambda s: None)
    disk = json.loads((tmp_path / "metrics.json").read_text())
    assert disk == json.loads(json.dumps(m))
    assert disk["config"]["model"] == "digits_cnn" and len(disk["epochs"]) == 1
    assert (tmp_path / "checkpoint.npz").is_file()
