#!/usr/bin/python3
"""Prints the reference learning rates pasted into test_lr_schedule.cpp, computed with
torch.optim.lr_scheduler (torch 1.13) stepped once per iteration (or once per epoch where
the name says so). Each case: (name, {step: lr}). Run: /usr/bin/python3 tests/nn/lr_reference.py"""
import torch
from torch.optim import SGD
from torch.optim import lr_scheduler as S


def trace(make, base_lr, steps, n):
    """lr in effect for each of the first n optimizer steps, for the queried steps."""
    opt = SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {s: lrs[s] for s in steps}


def trace_momentum(make, base_lr, steps, n):
    """Like trace, for the momentum the scheduler gives the group at each step."""
    opt = SGD([torch.zeros(1, requires_grad=True)], lr=base_lr, momentum=0.9)
    sched = make(opt)
    momenta = []
    for _ in range(n):
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    return {s: momenta[s] for s in steps}


def per_epoch(make, base_lr, epochs, steps_per_epoch=10):
    """lr of every step when the scheduler is stepped once per epoch (torch's usual loop),
    keyed by global step: the first and the last step of each epoch."""
    opt = SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make(opt)
    lrs = {}
    for e in range(epochs):
        for i in range(steps_per_epoch):
            if i in (0, steps_per_epoch - 1):
                lrs[e * steps_per_epoch + i] = opt.param_groups[0]["lr"]
            opt.step()
        sched.step()
    return lrs


def product(a, b, base_lr):
    return {s: a[s] * b[s] / base_lr for s in a}


# airbench94's schedule: np.interp over [0, int(0.23 T), T] -> [0.2, 1, 0.07], T = 476
import numpy as np
PIECEWISE = np.interp(np.arange(477), [0, int(0.23 * 476), 476], [0.2, 1, 0.07])

cases = {
    # steps_per_epoch = 10 everywhere
    "piecewise": trace(lambda o: S.LambdaLR(o, lambda s: PIECEWISE[s]), 1.4648e-3,
                       [0, 1, 50, 108, 109, 110, 300, 474, 475], 476),
    "step": trace(lambda o: S.MultiStepLR(o, [30, 60], 0.1), 0.1, [0, 29, 30, 59, 60, 89], 90),
    "cosine": trace(lambda o: S.CosineAnnealingLR(o, T_max=50, eta_min=0.001), 0.1,
                    [0, 1, 10, 25, 37, 49, 50], 51),
    "onecycle_cos": trace(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=100, pct_start=0.3,
                                                 div_factor=25, final_div_factor=1e4,
                                                 anneal_strategy="cos", cycle_momentum=False),
                          0.1, [0, 1, 15, 29, 30, 50, 99], 100),
    "onecycle_linear": trace(lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=80,
                                                    pct_start=0.25, div_factor=10,
                                                    final_div_factor=100,
                                                    anneal_strategy="linear",
                                                    cycle_momentum=False),
                             0.2, [0, 7, 19, 20, 40, 79], 80),
    "warmup_step": trace(lambda o: S.ChainedScheduler([S.LinearLR(o, 0.1, 1.0, total_iters=20),
                                                       S.MultiStepLR(o, [30, 60], 0.1)]),
                         0.1, [0, 5, 19, 20, 30, 61], 62),
    # ChainedScheduler with CosineAnnealingLR(eta_min=0) multiplies too, but through the
    # cosine's recursive form (1e-15 relative from the product): the warm-up factor and the
    # cosine come from two schedulers and are multiplied here, the closed form's values.
    "warmup_cosine": product(
        trace(lambda o: S.LinearLR(o, 0.25, 1.0, total_iters=15), 0.1, [0, 3, 14, 15, 30, 49], 50),
        trace(lambda o: S.CosineAnnealingLR(o, T_max=50, eta_min=0.0), 0.1,
              [0, 3, 14, 15, 30, 49], 50), 0.1),
    # OneCycleLR with every default argument (pct_start 0.3, cos, cycle_momentum with
    # 0.85/0.95, div_factor 25, final_div_factor 1e4): its lr and the momentum it sets.
    "onecycle_defaults_lr": trace(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=100),
                                  0.1, [0, 1, 15, 29, 30, 50, 99], 100),
    "onecycle_defaults_momentum": trace_momentum(
        lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=100), 0.1,
        [0, 1, 15, 29, 30, 50, 99], 100),
    # a run of 95 steps (a fractional --epochs 9.5 of 10 steps): cosine and onecycle span it
    "cosine_run_steps": trace(lambda o: S.CosineAnnealingLR(o, T_max=95, eta_min=0.001), 0.1,
                              [0, 19, 60, 94, 95], 96),
    "onecycle_run_steps_lr": trace(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=95), 0.1,
                                   [0, 27, 28, 60, 94], 95),
    "onecycle_run_steps_momentum": trace_momentum(
        lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=95), 0.1, [0, 27, 28, 60, 94], 95),
    # stepped once per epoch (10 steps each): torch's per-epoch loop
    "epoch_cosine": per_epoch(lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.001), 0.1, 5),
    "epoch_warmup_step": per_epoch(
        lambda o: S.ChainedScheduler([S.LinearLR(o, 0.1, 1.0, total_iters=2),
                                      S.MultiStepLR(o, [3, 6], 0.1)]), 0.1, 9),
    "epoch_onecycle_defaults_lr": per_epoch(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10),
                                            0.1, 10),
}
for name, values in cases.items():
    body = ", ".join(f"{{{s}, {v!r}}}" for s, v in values.items())
    print(f"// {name}\n{{{body}}},")
