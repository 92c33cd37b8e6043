"""MNIST training benchmark: convkit vs PyTorch, same recipe, epochs interleaved.

    python benchmarks/train_mnist.py [--epochs 3] [--data ../shared/data/mnist] [--threads 2]
                                     [--seed 0] [--limit N] [--no-torch]
    python benchmarks/train_mnist.py --resnet20 [--batches 50]
    python benchmarks/train_mnist.py --like-cli ...   # OpenBLAS as `convkit train` sets it

Recipe (the training issue's target): mnist_cnn, Adam lr 1e-3, batch 64,
seed 0, pixels scaled to [0, 1], no augmentation. Epoch k of convkit runs,
then epoch k of PyTorch, so both see the same machine load. Printed per
epoch: seconds and test accuracy for each, and the time ratio convkit/PyTorch.
The two do not share initial weights or batch order (each library's own
seeded init and shuffling); accuracy is compared, not bitwise numbers.

--resnet20 times one epoch of resnet20 (SGD momentum 0.9, lr 0.1, batch 128)
on synthetic CIFAR-shaped data (random images, 10 classes), --batches batches.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import convkit  # noqa: E402
from convkit import data, models, optim  # noqa: E402
from convkit.train import evaluate, fit  # noqa: E402

try:
    import torch
    import torch.nn as tnn
except ImportError:  # PyTorch is optional
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_mnist_cnn():
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 5, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 5, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(3136, 1024), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(1024, 10))


def torch_epoch(net, opt, x, y, perm, batch):
    net.train()
    t0 = time.perf_counter()
    lossf = tnn.CrossEntropyLoss()
    for i in range(0, len(perm), batch):
        idx = perm[i:i + batch]
        xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        opt.zero_grad()
        loss = lossf(net(xb), yb)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def torch_accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(torch.from_numpy(x[i:i + 1000])).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred.numpy() == y).mean())


def mnist_run(args):
    train = data.mnist(args.data, True, data.ToFloat())
    test = data.mnist(args.data, False, data.ToFloat())
    if args.limit:
        train = data.ArrayDataset(train.images[:args.limit], train.labels[:args.limit], train.transform)
    convkit.manual_seed(args.seed)
    net = models.mnist_cnn()
    opt = optim.Adam(net.parameters(), lr=1e-3)
    loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=args.seed)
    test_loader = data.DataLoader(test, batch_size=1000)
    if torch is not None and not args.no_torch:
        torch.manual_seed(args.seed)
        tnet, xs, ys = torch_mnist_cnn(), train.images.astype(np.float32) / 255, train.labels
        txt, tyt = test.images.astype(np.float32) / 255, test.labels
        topt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
        trng = np.random.default_rng(args.seed)
    else:
        tnet = None
    print(f"mnist_cnn, Adam 1e-3, batch 64, {len(train):,} train / {len(test):,} test images, "
          f"{args.threads} threads (convkit {convkit.num_threads()}, torch "
          f"{torch.get_num_threads() if tnet is not None else '-'})")
    print(f"{'epoch':>5} {'convkit s':>10} {'acc':>7} {'torch s':>9} {'acc':>7} {'ratio':>6}")
    ours_s, theirs_s = [], []
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        fit_one_epoch(net, loader, opt, epoch, args.progress)
        ours = time.perf_counter() - t0
        acc = evaluate(net, test_loader)["accuracy"]
        ours_s.append(ours)
        line = f"{epoch + 1:>5} {ours:>10.1f} {acc:>7.4f}"
        if tnet is not None:
            theirs = torch_epoch(tnet, topt, xs, ys, trng.permutation(len(ys)), 64)
            theirs_s.append(theirs)
            line += f" {theirs:>9.1f} {torch_accuracy(tnet, txt, tyt):>7.4f} {ours / theirs:>6.2f}"
        print(line, flush=True)
    if theirs_s:
        print(f"median epoch: convkit {np.median(ours_s):.1f} s, torch {np.median(theirs_s):.1f} s, "
              f"ratio {np.median(ours_s) / np.median(theirs_s):.2f}")


def fit_one_epoch(net, loader, opt, epoch, progress):
    """One epoch of ``loader`` (already set to ``epoch``) through convkit.train.fit's loop."""
    class _Once:  # hides set_epoch, so fit's own epoch numbering does not reorder the batches
        def __init__(self, inner):
            self.inner = inner

        def __len__(self):
            return len(self.inner)

        def __iter__(self):
            return iter(self.inner)
    return fit(net, _Once(loader), None, 1, opt, progress=progress)


def resnet_run(args):
    rng = np.random.default_rng(0)
    n = args.batches * 128
    x = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, n)
    convkit.manual_seed(0)
    net = models.resnet20()
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loader = data.DataLoader(data.ArrayDataset(x, y), batch_size=128, shuffle=True, seed=0)
    print(f"resnet20, SGD 0.1 momentum 0.9, batch 128, {args.batches} batches of synthetic 3x32x32")
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        fit_one_epoch(net, loader, opt, 0, args.progress)
        ours = time.perf_counter() - t0
        line = f"repeat {rep + 1}: convkit {ours:.1f} s"
        if torch is not None and not args.no_torch:
            torch.manual_seed(0)
            tnet = torch_resnet20()
            topt = torch.optim.SGD(tnet.parameters(), lr=0.1, momentum=0.9)
            theirs = torch_epoch(tnet, topt, x, y, rng.permutation(n), 128)
            line += f", torch {theirs:.1f} s, ratio {ours / theirs:.2f}"
        print(line, flush=True)


def torch_resnet20():
    """The same ResNet-20 as convkit.models.resnet20, in PyTorch."""
    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.shortcut = tnn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    layers, cin = [tnn.Conv2d(3, 16, 3, 1, 1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU()], 16
    for stage, width in enumerate((16, 32, 64)):
        for i in range(3):
            layers.append(Block(cin, width, 2 if stage and i == 0 else 1))
            cin = width
    layers += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(64, 10)]
    return tnn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "mnist"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--resnet20", action="store_true")
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--like-cli", action="store_true",
                   help="run with OpenBLAS tuned as the convkit command tunes it (OPENBLAS_THREAD_TIMEOUT=4, "
                        "and the AVX-512 core type where OpenBLAS chose AVX2): restarts this script once")
    args = p.parse_args()
    from convkit._blas import blas_info, tuning_env
    if args.like_cli and tuning_env():
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **tuning_env()))
    print(f"OpenBLAS core type {blas_info()['corename']}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(default)')}, OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', '(default)')}")
    convkit.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    resnet_run(args) if args.resnet20 else mnist_run(args)


if __name__ == "__main__":
    main()
