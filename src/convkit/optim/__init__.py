"""Optimizers and learning-rate schedules with torch.optim's API and update rules.

>>> import numpy as np, convkit
>>> from convkit.optim import SGD, lr_scheduler
>>> w = convkit.tensor(np.array([1.0, -1.0]), requires_grad=True)
>>> opt = SGD([w], lr=0.5, momentum=0.9)
>>> sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
>>> for _ in range(2):
...     opt.zero_grad()
...     (w * w).sum().backward()
...     opt.step(); sched.step()
>>> w.data, opt.param_groups[0]["lr"]
(array([-0.45,  0.45]), 0.125)

Parameters are updated in place, in their own dtype; ``state_dict()`` holds
only plain types and ndarrays (see :mod:`convkit.optim.optimizer`).
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, MultiStepLR, OneCycleLR, SequentialLR, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler", "LRScheduler", "StepLR", "MultiStepLR",
           "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR"]
