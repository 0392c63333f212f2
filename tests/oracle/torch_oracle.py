#!/usr/bin/python3
"""PyTorch oracle for one training step: builds the torchvision model, writes its random
weights (BN affine parameters and running statistics randomised too, so they are tested),
a random batch and the SGD hyper-parameters to an HDF5 file, runs oracle_step (our C++
model on the CPU backend) on it, and compares tensor by tensor against PyTorch computed in
float64: logits, loss, every parameter gradient, the parameters after one SGD step (and the
step itself, p_new - p_old, which is a sharper test than p_new), the BN running statistics
and num_batches_tracked. Runs the step with Nesterov off and on. Relative error
||ours - torch|| / ||torch|| per tensor must be <= --tolerance (1e-4); prints the worst
tensors and exits 1 on failure.

Models: resnet50 = torchvision.models.resnet50(num_classes=10); resnet18_cifar = torchvision
resnet18(num_classes=10) with conv1 = 3x3/1 pad 1 and maxpool = Identity."""
import argparse
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torchvision


def build(arch, num_classes):
    if arch == "resnet50":
        return torchvision.models.resnet50(num_classes=num_classes)
    if arch == "resnet18_cifar":
        m = torchvision.models.resnet18(num_classes=num_classes)
        m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        m.maxpool = nn.Identity()
        return m
    raise SystemExit(f"torch_oracle.py: unknown arch {arch}")


def randomise_bn(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(3)


def rel_err(ours, ref):
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    denom = np.linalg.norm(ref)
    diff = np.linalg.norm(ours - ref)
    return diff / denom if denom > 0 else diff


def run_case(args, nesterov):
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    model = build(args.arch, args.num_classes)
    randomise_bn(model, gen)
    images = torch.randn(args.batch, args.size, args.size, 3, generator=gen)  # N,H,W,C
    labels = torch.randint(0, args.num_classes, (args.batch,), generator=gen, dtype=torch.int32)
    hyper = dict(lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)

    tag = f"{args.arch}_{'nesterov' if nesterov else 'momentum'}"
    in_path = os.path.join(args.workdir, f"{tag}_in.h5")
    out_path = os.path.join(args.workdir, f"{tag}_out.h5")
    params = dict(model.named_parameters())
    with h5py.File(in_path, "w") as f:
        f.attrs["arch"] = args.arch
        f.attrs["num_classes"] = args.num_classes
        f.attrs["in_channels"] = 3
        for k in ("lr", "momentum", "weight_decay"):
            f.attrs[k] = float(hyper[k])
        f.attrs["nesterov"] = int(nesterov)
        for name, t in model.state_dict().items():
            group = "params" if name in params else "buffers"
            f[f"{group}/{name}"] = t.numpy()
        f["batch/images"] = images.numpy()
        f["batch/labels"] = labels.numpy()

    # Reference in float64, so the error measured is ours, not PyTorch's f32 rounding.
    ref = model.double().train()
    before = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    opt = torch.optim.SGD(ref.parameters(), **hyper)
    logits = ref(images.double().permute(0, 3, 1, 2))
    loss = nn.functional.cross_entropy(logits, labels.long())
    opt.zero_grad()
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in ref.named_parameters()}
    opt.step()
    after = ref.state_dict()

    proc = subprocess.run([args.oracle_step, in_path, out_path], capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"torch_oracle.py: oracle_step failed with exit code {proc.returncode}")

    errors = []  # (relative error, what)
    with h5py.File(out_path, "r") as f:
        errors.append((rel_err(f["logits"][()], logits.detach().numpy()), "logits"))
        errors.append((rel_err(f["loss"][()], [loss.item()]), "loss"))
        for name, g in grads.items():
            errors.append((rel_err(f[f"grads/{name}"][()], g.numpy()), f"grad {name}"))
        for name in params:
            new, old = f[f"params/{name}"][()], before[name].numpy()
            errors.append((rel_err(new, after[name].numpy()), f"param {name}"))
            errors.append((rel_err(new - old.astype(np.float32),
                                   after[name].numpy() - old), f"update {name}"))
        for name, t in after.items():
            if name not in params:
                errors.append((rel_err(f[f"buffers/{name}"][()], t.numpy()), f"buffer {name}"))
        expected = len(after) + 2 * len(params) + 2
    if len(errors) != expected:
        raise SystemExit(f"torch_oracle.py: compared {len(errors)} tensors, expected {expected}")
    return tag, errors


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, choices=["resnet50", "resnet18_cifar"])
    p.add_argument("--oracle-step", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(2)

    failed = False
    for nesterov in (False, True):
        tag, errors = run_case(args, nesterov)
        errors.sort(reverse=True)
        bad = [e for e in errors if not e[0] <= args.tolerance]  # NaN counts as bad
        print(f"{tag}: {len(errors)} tensors compared, worst relative errors:")
        for err, what in errors[:8]:
            print(f"  {err:.3e}  {what}")
        if bad:
            failed = True
            print(f"{tag}: FAIL, {len(bad)} tensors above {args.tolerance:g}:")
            for err, what in bad[:20]:
                print(f"  {err:.3e}  {what}")
    print("FAILED" if failed else "PASSED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
