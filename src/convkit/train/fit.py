"""The training loop: fit, evaluate, predict; checkpoints, resume, and a clean stop on Ctrl-C.

A checkpoint is taken between steps only, so it is always consistent; it
holds the model, optimizer and scheduler states, the global random state,
the loader position (epoch and step) and the running sums of the epoch in
progress. Resuming from it gives exactly the numbers of an uninterrupted
run with the same seed and thread count.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import numpy as np

from .. import _random
from .. import functional as F
from ..autograd import Tensor, no_grad
from .checkpoint import load_checkpoint, save_checkpoint


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training between two steps; ``checkpoint`` says where the resumable state went."""

    def __init__(self, message, checkpoint=None):
        super().__init__(message)
        self.checkpoint = checkpoint


class _StopOnSignal:
    """Turn the first SIGINT into a flag the loop checks between steps (a second one interrupts at once)."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but a bare environment still trains
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)


def _batch_stats(out, y, loss):
    """(loss sum, correct count, count) of one batch, as plain floats."""
    n = len(y)
    logits = out.data
    correct = 0
    if logits.ndim >= 2 and np.asarray(y).dtype.kind in "iu":
        correct = int(np.sum(np.argmax(logits, axis=1) == np.asarray(y)))
    return float(loss.data) * n, correct, n


def evaluate(model, data, loss=None):
    """Mean loss and accuracy of ``model`` over ``data`` (an iterable of (x, y) batches), in eval mode.

    Returns ``{"loss": float, "accuracy": float}``; the model's mode is restored afterwards.
    """
    loss = F.cross_entropy if loss is None else loss
    was_training = model.training
    model.eval()
    total = correct = count = 0.0
    try:
        with no_grad():
            for x, y in data:
                out = model(Tensor(x))
                s, c, n = _batch_stats(out, y, loss(out, y))
                total, correct, count = total + s, correct + c, count + n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: data must yield at least one batch; got an empty data set.")
    return {"loss": total / count, "accuracy": correct / count}


def predict(model, x, batch_size=256):
    """The model's outputs (e.g. logits) for the array ``x`` of shape (N, ...), computed in batches in eval mode."""
    x = np.asarray(x)
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be >= 1; got batch_size={batch_size!r}.")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outs = [model(Tensor(x[i:i + batch_size])).data for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.empty((0,))


def fit(model, train_data, val_data=None, epochs=1, optimizer=None, loss=None, *, scheduler=None,
        scheduler_interval="epoch", checkpoint=None, resume=False, progress=True, config=None,
        on_epoch_end=None):
    """Train ``model`` for ``epochs`` epochs; returns the history (one dict per epoch).

    Parameters
    ----------
    train_data, val_data : iterables of (x, y) NumPy batches with ``len`` (a convkit DataLoader;
        its ``set_epoch`` is called so epoch k has the same order in every run).
    optimizer : a convkit.optim optimizer (default Adam, lr 1e-3).
    loss : ``loss(output, y) -> scalar Tensor`` (default F.cross_entropy).
    scheduler : an LR scheduler stepped once per epoch, or per batch with scheduler_interval="batch".
    checkpoint : a path; the state is saved there after every epoch and on Ctrl-C.
    resume : continue from ``checkpoint`` (error if it does not exist).
    progress : a tqdm bar per epoch (batches, images/s, running loss and accuracy, ETA).
    config : a dict stored in the checkpoint (what the CLI ran).
    on_epoch_end : ``f(history)`` after each epoch's checkpoint (the CLI writes metrics.json there).

    Each history entry holds epoch, train_loss, train_accuracy, test_loss,
    test_accuracy (None without val_data), seconds and lr. A non-finite loss
    raises TrainingError naming the epoch and step, before that step changes
    any weight. Ctrl-C finishes the current step, saves a resumable
    checkpoint and raises TrainingInterrupted.
    """
    if optimizer is None:
        from ..optim import Adam
        optimizer = Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy if loss is None else loss
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'batch'; got {scheduler_interval!r}.")
    epochs = int(epochs)
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0; got epochs={epochs!r}.")
    if resume and checkpoint is None:
        raise ValueError("fit: checkpoint must be a path when resume=True; got checkpoint=None.")
    history, start_epoch, position = [], 0, None
    if resume:
        state = load_checkpoint(checkpoint)
        history, start_epoch, position = _restore(state, model, optimizer, scheduler)
    ckpt = None if checkpoint is None else Path(checkpoint)

    def snapshot(epoch, step, sums):
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "epoch": epoch, "step": step, "sums": list(sums), "history": history,
                "rng": _random.get_rng_state(), "config": config or {}}

    with _StopOnSignal() as stop:
        for epoch in range(start_epoch, epochs):
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            skip, sums = 0, [0.0, 0, 0, 0.0]  # loss sum, correct, count, seconds
            if position is not None:
                skip, sums = position["step"], list(position["sums"])
                _random.set_rng_state(position["rng"])
                position = None
            model.train()
            bar = _progress(len(train_data), f"epoch {epoch + 1}/{epochs}", progress)
            if bar is not None and skip:
                bar.update(skip)
            t0 = time.perf_counter() - sums[3]
            for step, (x, y) in enumerate(train_data):
                if step < skip:
                    continue
                out = model(Tensor(x))
                lval = loss(out, y)
                if not math.isfinite(float(lval.data)):
                    if bar is not None:
                        bar.close()
                    raise TrainingError(f"fit: the loss became {float(lval.data)} at epoch {epoch + 1}, step "
                                        f"{step + 1}; stopped before updating the weights"
                                        + (f"; the last good checkpoint is '{ckpt}'." if ckpt else "."))
                optimizer.zero_grad()
                lval.backward()
                optimizer.step()
                if scheduler is not None and scheduler_interval == "batch":
                    scheduler.step()
                s, c, n = _batch_stats(out, y, lval)
                sums[0] += s
                sums[1] += c
                sums[2] += n
                if bar is not None:
                    dt = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{sums[0] / sums[2]:.4f}", acc=f"{sums[1] / sums[2]:.4f}",
                                    img_s=f"{sums[2] / max(dt, 1e-9):.0f}", refresh=False)
                    bar.update(1)
                if stop.requested:
                    if bar is not None:
                        bar.close()
                    sums[3] = time.perf_counter() - t0
                    where = None
                    _check_state(model, epoch, step, ckpt)
                    if ckpt is not None:
                        where = save_checkpoint(ckpt, snapshot(epoch, step + 1, sums))
                    raise TrainingInterrupted(
                        f"interrupted at epoch {epoch + 1}, step {step + 1}"
                        + (f"; resumable checkpoint saved to '{where}'" if where else "; nothing saved"), where)
            if bar is not None:
                bar.close()
            _check_state(model, epoch, len(train_data) - 1, ckpt)
            seconds = time.perf_counter() - t0
            entry = {"epoch": epoch + 1,
                     "train_loss": sums[0] / max(sums[2], 1), "train_accuracy": sums[1] / max(sums[2], 1),
                     "test_loss": None, "test_accuracy": None, "seconds": seconds,
                     "lr": [g["lr"] for g in optimizer.param_groups]}
            if val_data is not None:
                ev = evaluate(model, val_data, loss)
                entry["test_loss"], entry["test_accuracy"] = ev["loss"], ev["accuracy"]
            history.append(entry)
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            if ckpt is not None:
                save_checkpoint(ckpt, snapshot(epoch + 1, 0, [0.0, 0, 0, 0.0]))
            if on_epoch_end is not None:
                on_epoch_end(history)
    return history


def _check_state(model, epoch, step, ckpt):
    """Before a checkpoint is written: every weight and buffer finite, or TrainingError (a finite loss
    can still come with an update that overflowed; saving it would replace the last good checkpoint)."""
    for name, value in model.state_dict().items():
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise TrainingError(f"fit: {name} became non-finite by epoch {epoch + 1}, step {step + 1}; stopped "
                                f"without saving it" + (f"; the last good checkpoint is '{ckpt}'." if ckpt else "."))


def _restore(state, model, optimizer, scheduler):
    """Load a checkpoint's states; returns (history, epoch to start, mid-epoch position or None)."""
    try:
        model_state, opt_state = state["model"], state["optimizer"]
        epoch, step, history = int(state["epoch"]), int(state["step"]), list(state["history"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"fit: checkpoint must hold a training state; it lacks {e}.") from None
    model.load_state_dict(model_state)
    optimizer.load_state_dict(opt_state)
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if step:
        return history, epoch, {"step": step, "sums": state["sums"], "rng": state["rng"]}
    _random.set_rng_state(state["rng"])
    return history, epoch, None
