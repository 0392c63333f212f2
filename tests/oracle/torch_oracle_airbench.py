#!/usr/bin/python3
"""PyTorch oracle for one training step of airbench94, the network built here in PyTorch from
the published description (issue 20), not from dptrain's code:

  whiten = Conv2d(3, 24, 2, padding=0, bias=True), GELU (erf form, nn.GELU())
  block1..3 (widths 64, 256, 256): conv1 = Conv2d(3x3, padding 1, no bias) -> MaxPool2d(2)
      -> norm1 -> GELU -> conv2 = Conv2d(3x3, padding 1, no bias) -> norm2 -> GELU
  MaxPool2d(3) -> flatten -> head = Linear(256, 10, bias=False) -> logits * (1/9)
  norm = BatchNorm2d(eps=1e-12, momentum=0.4), weight fixed at 1 (requires_grad False).

Same weights (PyTorch's default init; BN shifts and running statistics randomised), same
batch; oracle_step runs dptrain's "airbench94" on the CPU backend and the comparison is
torch_oracle.py's, against PyTorch in float64: logits, loss (cross-entropy with label
smoothing 0.2), every trainable parameter's gradient, one SGD step (momentum 0.9, weight decay
5e-4, Nesterov off and on) on the trainable parameters, the momentum buffers, the BN running
statistics; the fixed BN scales must come back with gradient 0 and unchanged. Relative error
per tensor <= --tolerance (1e-4).

Max pooling picks the largest value of each window, so two values closer than float32
rounding could be picked differently in float32 and float64, and a whole layer's gradient then
moves by ~1e-2 relative: ill-conditioning, not a bug (torch_oracle.py has the same for ReLU
kinks). The batch is therefore drawn from the first seed (--seed, --seed+1, ...) whose float64
forward has every pooling window's top two values at least --tie-margin apart, relative to the
RMS of that pool's input; the script prints the seed and the smallest gap."""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import (compare_common, compare_param, report, run_oracle_step,  # noqa: E402
                          sgd_step)


def norm(c):
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)
    return bn


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = norm(cout)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Airbench94(nn.Module):
    def __init__(self, widths=(64, 256, 256), num_classes=10):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.act = nn.GELU()
        self.block1 = Block(24, widths[0])
        self.block2 = Block(widths[0], widths[1])
        self.block3 = Block(widths[1], widths[2])
        self.pool = nn.MaxPool2d(3)
        self.head = nn.Linear(widths[2], num_classes, bias=False)

    def forward(self, x):
        x = self.act(self.whiten(x))
        x = self.block3(self.block2(self.block1(x)))
        return self.head(self.pool(x).flatten(1)) / 9


def randomise_bn(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(3)


def smallest_pool_gap(model, images_nchw):
    """min over every max-pool window of (top1 - top2) / RMS of that pool's input, float64."""
    gaps = []

    def hook(m, inputs, out):
        x = inputs[0]
        k = m.kernel_size
        n, c, h, w = x.shape
        x = x[:, :, : h // k * k, : w // k * k]
        win = x.reshape(n, c, h // k, k, w // k, k).permute(0, 1, 2, 4, 3, 5).reshape(-1, k * k)
        top = win.topk(2, dim=1).values
        gaps.append(float(((top[:, 0] - top[:, 1]).min() / x.pow(2).mean().sqrt())))

    work = Airbench94().double()
    work.load_state_dict(model.state_dict())
    hooks = [m.register_forward_hook(hook) for m in work.modules() if isinstance(m, nn.MaxPool2d)]
    with torch.no_grad():
        work.train()(images_nchw.double())
    for h in hooks:
        h.remove()
    return min(gaps)


def write_input(path, model, trainable, images, labels, hyper, smoothing):
    with h5py.File(path, "w") as f:
        f.attrs["arch"] = "airbench94"
        f.attrs["num_classes"] = 10
        f.attrs["in_channels"] = 3
        f.attrs["shortcut"] = "auto"
        for k in ("lr", "momentum", "weight_decay"):
            f.attrs[k] = float(hyper[k])
        f.attrs["nesterov"] = int(hyper["nesterov"])
        f.attrs["label_smoothing"] = float(smoothing)
        params = dict(model.named_parameters())
        for name, t in model.state_dict().items():
            f[f"{'params' if name in params else 'buffers'}/{name}"] = t.numpy()
        f["batch/images"] = images.numpy()
        f["batch/labels"] = labels.numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--oracle-step", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--smoothing", type=float, default=0.2)
    p.add_argument("--tie-margin", type=float, default=1e-5)
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(2)

    torch.manual_seed(args.seed)
    model = Airbench94()
    assert sum(q.numel() for q in model.parameters()) == 1972792
    randomise_bn(model, torch.Generator().manual_seed(args.seed))
    for k in range(200):
        gen = torch.Generator().manual_seed(args.seed + 1 + k)
        images = torch.randn(args.batch, 32, 32, 3, generator=gen)  # N,H,W,C
        labels = torch.randint(0, 10, (args.batch,), generator=gen, dtype=torch.int32)
        gap = smallest_pool_gap(model, images.permute(0, 3, 1, 2))
        if gap >= args.tie_margin:
            break
    else:
        raise SystemExit("torch_oracle_airbench.py: no batch without near-tied pool windows")
    print(f"airbench94: batch seed {args.seed + 1 + k}, smallest pool-window gap {gap:.2e} "
          f"of the input's RMS")
    images_nchw = images.permute(0, 3, 1, 2)
    params = dict(model.named_parameters())
    trainable = {k for k, q in params.items() if q.requires_grad}
    fixed = set(params) - trainable
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    ref = Airbench94().double()
    ref.load_state_dict(model.state_dict())
    ref.train()
    logits = ref(images_nchw.double())
    loss = F.cross_entropy(logits, labels.long(), label_smoothing=args.smoothing)
    loss.backward()
    grads = {k: q.grad.detach().clone() for k, q in ref.named_parameters() if k in trainable}
    buffers_after = {k: v for k, v in ref.state_dict().items() if k not in params}

    failed = False
    for nesterov in (False, True):
        hyper = dict(lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
        stepped, momentum = sgd_step(before, grads, trainable, hyper)

        tag = f"airbench94_{'nesterov' if nesterov else 'momentum'}"
        in_path = os.path.join(args.workdir, f"{tag}_in.h5")
        out_path = os.path.join(args.workdir, f"{tag}_out.h5")
        write_input(in_path, model, trainable, images, labels, hyper, args.smoothing)
        run_oracle_step(args.oracle_step, in_path, out_path, "torch_oracle_airbench.py")

        with h5py.File(out_path, "r") as f:
            errors = compare_common(f, logits, loss, buffers_after)
            for name in trainable:
                errors += compare_param(f, name, grads[name], before[name].double().numpy(),
                                        stepped[name].detach().numpy(), momentum[name])
            fixed_errors = []  # exact: gradient 0, value and momentum untouched, bit for bit
            for name in fixed:
                fixed_errors.append((float(np.abs(f[f"grads/{name}"][()]).max()),
                                     f"grad {name}"))
                fixed_errors.append((float(np.abs(f[f"params/{name}"][()] -
                                                  before[name].numpy()).max()), f"param {name}"))
                fixed_errors.append((float(np.abs(f[f"momentum/{name}"][()]).max()),
                                     f"momentum {name}"))
        expected_count = 2 + 4 * len(trainable) + len(buffers_after)
        if len(errors) != expected_count or len(fixed_errors) != 3 * 6:
            raise SystemExit(f"torch_oracle_airbench.py: compared {len(errors)} tensors and "
                             f"{len(fixed_errors) // 3} fixed ones, expected {expected_count} "
                             f"and 6")
        failed |= report(tag, errors, args.tolerance)
        failed |= report(f"{tag} fixed", fixed_errors, 0.0)
    print("FAILED" if failed else "PASSED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
