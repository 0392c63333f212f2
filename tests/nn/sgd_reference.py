#!/usr/bin/python3
"""Prints the weights and momentum buffers pasted into test_sgd_torch.cpp: torch.optim.SGD
(torch 1.13) over several steps on 8 weights, with the gradients below (exact in float32, so
both sides see the same inputs). Cases: dampening with weight decay at a constant lr;
dampening under OneCycleLR with every default argument (it cycles momentum); Nesterov under
the same. Run: /usr/bin/python3 tests/nn/sgd_reference.py"""
import torch
from torch.optim import SGD
from torch.optim import lr_scheduler as S

N = 8


def grad(step):
    return torch.tensor([((i * 7 + step * 3) % 11 - 5) * 0.125 for i in range(N)])


def run(steps, make_sched=None, **sgd):
    w = torch.tensor([(i - 4) * 0.25 for i in range(N)], requires_grad=True)
    opt = SGD([w], **sgd)
    sched = make_sched(opt) if make_sched else None
    for k in range(steps):
        w.grad = grad(k)
        opt.step()
        if sched:
            sched.step()
    buf = opt.state[w]["momentum_buffer"]
    return w.detach().tolist(), buf.tolist()


onecycle = lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10)
cases = {
    "dampening_decay": run(5, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "dampening_onecycle": run(6, onecycle, lr=0.1, momentum=0.9, dampening=0.5),
    "nesterov_onecycle": run(6, onecycle, lr=0.1, momentum=0.9, nesterov=True,
                             weight_decay=5e-4),
}
for name, (w, buf) in cases.items():
    print(f"// {name}\n{{{', '.join(map(repr, w))}}},\n{{{', '.join(map(repr, buf))}}},")
