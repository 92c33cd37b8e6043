"""What ``convkit train``, ``eval`` and ``predict`` do, as library functions.

:func:`train_run` resolves a data spec ("digits", "mnist:DIR", "fashion-mnist:DIR",
"cifar10:DIR"), builds the model, trains it with :func:`~convkit.train.fit`, and
writes into the output folder:

- ``metrics.json``: {"config": {...}, "epochs": [{"epoch", "train_loss",
  "train_accuracy", "test_loss", "test_accuracy", "seconds", "lr"}, ...]},
  rewritten atomically after every epoch;
- ``checkpoint.npz``: model, optimizer, scheduler and random states (no pickle);
- ``curves.png``: loss and accuracy per epoch, when matplotlib is installed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import _random, data, models, optim
from .. import functional as F
from .checkpoint import atomic_write, load_checkpoint
from .fit import evaluate, fit, predict

# Per data set: the model and epochs `convkit train` uses when not told, the pixel scale, the shape.
DATASETS = {
    "digits": {"model": "digits_cnn", "epochs": 15, "scale": data.DIGITS_SCALE, "shape": (1, 8, 8)},
    "mnist": {"model": "mnist_cnn", "epochs": 3, "scale": 255, "shape": (1, 28, 28)},
    "fashion-mnist": {"model": "mnist_cnn", "epochs": 3, "scale": 255, "shape": (1, 28, 28)},
    "cifar10": {"model": "resnet20", "epochs": 10, "scale": 255, "shape": (3, 32, 32)},
}
_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
OPTIMIZERS = {"sgd": lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9, weight_decay=5e-4),
              "adam": lambda p, lr: optim.Adam(p, lr=lr),
              "adamw": lambda p, lr: optim.AdamW(p, lr=lr)}


def _plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def parse_data_spec(spec):
    """"mnist:DIR" -> ("mnist", "DIR"); "digits" -> ("digits", None); a clear error otherwise."""
    name, _, folder = str(spec).partition(":")
    if name not in DATASETS:
        raise ValueError(f"train: --data must be digits, mnist:DIR, fashion-mnist:DIR or cifar10:DIR; "
                         f"got --data={spec!r}.")
    if name == "digits":
        if folder:
            raise ValueError(f"train: --data digits takes no folder (it is bundled); got --data={spec!r}.")
        return name, None
    if not folder:
        raise ValueError(f"train: --data {name} needs a folder, as {name}:DIR; got --data={spec!r}.")
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"train: --data folder must exist; got '{folder}' (from --data={spec!r}).")
    return name, folder


def _transforms(name, train):
    info = DATASETS[name]
    steps = [data.ToFloat(info["scale"])]
    if name == "cifar10":
        steps.append(data.Normalize(_CIFAR_MEAN, _CIFAR_STD))
        if train:
            steps += [data.RandomCrop(32, padding=4), data.RandomHorizontalFlip()]
    return data.Compose(steps)


def load_datasets(spec):
    """(train ArrayDataset, test ArrayDataset, dataset name) for a data spec, with the standard transforms."""
    name, folder = parse_data_spec(spec)
    if name == "digits":
        return data.digits(True, _transforms(name, True)), data.digits(False, _transforms(name, False)), name
    reader = {"mnist": data.mnist, "fashion-mnist": data.fashion_mnist, "cifar10": data.cifar10}[name]
    return reader(folder, True, _transforms(name, True)), reader(folder, False, _transforms(name, False)), name


def build_model(name, dataset):
    """The model ``name`` shaped for ``dataset`` (input channels, classes)."""
    shape = DATASETS[dataset]["shape"]
    kwargs = {"in_channels": shape[0], "num_classes": 10}
    if name == "mnist_cnn":
        kwargs["input_size"] = shape[1]
    return models.get_model(name, **kwargs)


def _write_json(path, obj):
    def write(f):
        json.dump(obj, f, indent=2)
        f.write("\n")
    atomic_write(path, write, "w")


def plot_curves(history, path):
    """Loss and accuracy per epoch into ``path`` (PNG); returns False when matplotlib is missing.
    The drawing lives in :mod:`convkit.explain.pictures` (``convkit show curves`` draws the same)."""
    from ..explain.pictures import plot_curves as draw

    return draw(history, path)


def train_run(data_spec="digits", model=None, epochs=None, batch_size=64, optimizer="adam", lr=1e-3, seed=0,
              out=None, resume=False, progress=True, log=print):
    """Train as ``convkit train`` does; returns the metrics dict written to ``out/metrics.json``.

    ``out`` defaults to ``runs/<dataset>-<model>``.
    """
    name, _ = parse_data_spec(data_spec)
    model_name = model or DATASETS[name]["model"]
    if model_name not in models.MODELS:
        raise ValueError(f"train: --model must be one of {sorted(models.MODELS)}; got --model={model_name!r}.")
    epochs = DATASETS[name]["epochs"] if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"train: --epochs must be >= 1; got --epochs={epochs}.")
    if int(batch_size) < 1:
        raise ValueError(f"train: --batch-size must be >= 1; got --batch-size={batch_size}.")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"train: --optimizer must be one of {sorted(OPTIMIZERS)}; got --optimizer={optimizer!r}.")
    if not (float(lr) > 0):
        raise ValueError(f"train: --lr must be > 0; got --lr={lr}.")
    out = Path(out or f"runs/{name}-{model_name}")
    ckpt = out / "checkpoint.npz"
    config = {"data": str(data_spec), "dataset": name, "model": model_name, "epochs": epochs,
              "batch_size": int(batch_size), "optimizer": optimizer, "lr": float(lr), "seed": int(seed)}
    if resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"train: --resume needs a checkpoint at '{ckpt}'; none found.")
        saved = load_checkpoint(ckpt).get("config", {})
        for key in ("dataset", "model", "batch_size", "optimizer", "lr", "seed"):
            if key in saved and saved[key] != config[key]:
                raise ValueError(f"train: --resume must use the run's own settings; the checkpoint has "
                                 f"{key}={saved[key]!r}, this command {key}={config[key]!r}.")
    train_set, test_set, _ = load_datasets(data_spec)
    _random.manual_seed(int(seed))
    net = build_model(model_name, name)
    opt = OPTIMIZERS[optimizer](net.parameters(), float(lr))
    train_loader = data.DataLoader(train_set, batch_size=int(batch_size), shuffle=True, seed=int(seed))
    test_loader = data.DataLoader(test_set, batch_size=256)
    out.mkdir(parents=True, exist_ok=True)
    n_params = sum(p.numel() for p in net.parameters())
    log(f"convkit train: {model_name} ({n_params:,} parameters) on {name}: {len(train_set):,} train / "
        f"{len(test_set):,} test images, {_plural(epochs, 'epoch')}, batch {batch_size}, {optimizer} lr {lr}, "
        f"seed {seed}")

    def write(history):
        _write_json(out / "metrics.json", {"config": config, "epochs": history})
        h = history[-1]
        log(f"epoch {h['epoch']}/{epochs}: train loss {h['train_loss']:.4f} acc {h['train_accuracy']:.4f} | "
            f"test loss {h['test_loss']:.4f} acc {h['test_accuracy']:.4f} | {h['seconds']:.1f} s")

    history = fit(net, train_loader, test_loader, epochs, opt, checkpoint=ckpt, resume=resume, progress=progress,
                  config=config, on_epoch_end=write)
    metrics = {"config": config, "epochs": history}
    _write_json(out / "metrics.json", metrics)
    drew = plot_curves(history, out / "curves.png")
    last = history[-1] if history else None
    if last is not None:
        total = sum(h["seconds"] for h in history)
        log(f"done: test accuracy {last['test_accuracy']:.4f}, test loss {last['test_loss']:.4f} after "
            f"{_plural(last['epoch'], 'epoch')} ({total:.1f} s of training)")
    log(f"wrote {out / 'metrics.json'}, {ckpt}" + (f", {out / 'curves.png'}" if drew else
                                                   " (curves.png needs matplotlib: pip install convkit[plot])"))
    return metrics


def load_trained(checkpoint):
    """(model in eval mode, config) rebuilt from a ``convkit train`` checkpoint."""
    state = load_checkpoint(checkpoint)
    config = state.get("config") or {}
    if "model" not in config or "dataset" not in config:
        raise ValueError(f"load_trained: checkpoint must come from convkit train (with its config); "
                         f"'{checkpoint}' has none.")
    net = build_model(config["model"], config["dataset"])
    net.load_state_dict(state["model"])
    return net.eval(), config


def eval_run(checkpoint, data_spec=None, batch_size=256):
    """Test loss and accuracy of a trained checkpoint on its data set (or ``data_spec``)."""
    net, config = load_trained(checkpoint)
    _, test_set, _ = load_datasets(data_spec or config["data"])
    return evaluate(net, data.DataLoader(test_set, batch_size=batch_size))


def prepare_input(x, config):
    """An image or batch for the checkpoint's model: (H, W), (C, H, W) or (N, C, H, W); uint8 is scaled
    to [0, 1] by /255, floats are taken as already scaled. Wrong sizes are an error, before any work."""
    shape = DATASETS[config["dataset"]]["shape"]
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"predict: the input must be images of shape {'x'.join(map(str, shape))} "
                         f"(C x H x W) for this model; got shape {tuple(np.asarray(x).shape)}.")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
    else:
        raise TypeError(f"predict: the input must be uint8 or float; got dtype={x.dtype}.")
    if config["dataset"] == "cifar10":
        x = (x - np.asarray(_CIFAR_MEAN, np.float32)[:, None, None]) / np.asarray(_CIFAR_STD, np.float32)[:, None, None]
    return x


def classify(net, config, x):
    """(predicted classes, class probabilities) of a model from :func:`load_trained` for the images ``x``."""
    probs = F.softmax(predict(net, prepare_input(x, config)), 1)
    return np.argmax(probs, 1), probs
