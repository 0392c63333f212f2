#!/usr/bin/python3
"""PyTorch oracle for one training step: builds the torchvision model, writes its random
weights (BN affine parameters and running statistics randomised too, so they are tested),
a random batch and the SGD hyper-parameters to an HDF5 file, runs oracle_step (our C++
model on the CPU backend) on it, and compares tensor by tensor against PyTorch computed in
float64: logits, loss, every parameter gradient, the parameters after one SGD step, the
step itself (p_new - p_old, a sharper test than p_new; float32 rounding of p_new, 2 ulp per
element, is not counted as error), the momentum buffer, the BN running statistics and
num_batches_tracked. The step runs with Nesterov off and on (momentum 0.9, wd 5e-4).
Relative error ||ours - torch|| / ||torch|| per tensor must be <= --tolerance (1e-4); the
script prints the worst tensors and exits 1 on failure.

Why BN biases are nudged before the test: ReLU's derivative jumps at 0, so a pre-activation
within float32 rounding (~1e-6 deep in the net) of zero can take the other side of the kink
in our f32 forward than in PyTorch's f64 one, and one such element moves a whole layer's
gradient by ~1e-3 relative; that is ill-conditioning, not a bug. Before writing the file,
each BN that feeds a ReLU (directly, or through the residual add) gets its bias shifted per
channel by the smallest amount that leaves no pre-ReLU value of this batch within --margin
(1e-4) of zero. The shifted biases are part of the model both sides run.

Models (tests/bench/torch_models.py, shared with the benchmark peers): resnet50 =
torchvision.models.resnet50(num_classes=10); resnet18_cifar = torchvision resnet18(num_classes=10)
with conv1 = 3x3/1 pad 1 and maxpool = Identity; resnet20 = He et al.'s CIFAR ResNet with
option-A shortcuts (stride-2 subsample, zero-padded channels: the default) or, with --shortcut B,
1x1 projections. oracle_step builds the same model from the file's arch and shortcut."""
import argparse
import copy
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from torch_models import SubsamplePad, default_shortcut, make_model  # noqa: E402


def randomise_bn(model, gen):
    """Random BN affine parameters and running statistics. The last BN of each residual
    branch gets gamma in [0.1, 0.3] (a damped zero_init_residual): with full-scale branches a
    deep random ResNet maps different images to nearly collinear features, train-mode BN over
    8 samples at 1x1 (resnet50's layer4) then cancels catastrophically, and PyTorch's own
    float32 result is 3e-2 away from float64, which would leave nothing to test at 1e-4.
    Damped, PyTorch float32 vs float64 agree to ~1e-5."""
    last = set()
    for block in model.modules():
        if isinstance(block, BasicBlock):
            last.add(block.bn2)
        elif isinstance(block, Bottleneck):
            last.add(block.bn3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                gamma = 0.5 + torch.rand(c, generator=gen)
                m.weight.copy_(0.2 * gamma if m in last else gamma)
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(3)


def channel_shift(pre, margin):
    """Smallest per-channel shift d with min |pre + d| >= margin over N, H, W."""
    c = pre.shape[1]
    v = pre.transpose(0, 1).reshape(c, -1).sort(dim=1).values
    inf = torch.full((c, 1), float("inf"), dtype=v.dtype)
    # Candidates: centre zero in a gap of at least 2*margin, or move all values to one side.
    gaps = v[:, 1:] - v[:, :-1]
    mids = -(v[:, 1:] + v[:, :-1]) / 2
    inner = torch.where(gaps >= 2.5 * margin, mids, torch.full_like(mids, float("inf")))
    cands = torch.cat([inner, 1.5 * margin - v[:, :1], -1.5 * margin - v[:, -1:], inf], dim=1)
    best = cands.gather(1, cands.abs().argmin(dim=1, keepdim=True)).squeeze(1)
    ok = pre.abs().amin(dim=(0, 2, 3)) >= margin
    return torch.where(ok, torch.zeros_like(best), best)


def separate_relu_inputs(model, images_nchw, margin):
    """Shifts (in place) the biases of the BNs that feed ReLUs; returns the largest shift."""
    work = copy.deepcopy(model).double().train()  # running stats of `model` stay untouched
    names = {m: n for n, m in work.named_modules()}
    shifts = {}  # BN name -> per-channel shift
    hooks = []

    def shift_bn_output(bn, out, pre):
        d = channel_shift(pre, margin)
        shifts[names[bn]] = shifts.get(names[bn], 0) + d
        bn.bias += d
        return out + d.view(1, -1, 1, 1)

    def feeds_relu(bn):
        hooks.append(bn.register_forward_hook(lambda m, i, o: shift_bn_output(m, o, o)))

    feeds_relu(work.bn1)
    for block in work.modules():
        if not isinstance(block, (BasicBlock, Bottleneck)):
            continue
        feeds_relu(block.bn1)
        last = block.bn2 if isinstance(block, BasicBlock) else block.bn3
        if isinstance(block, Bottleneck):
            feeds_relu(block.bn2)
        state = {}
        hooks.append(block.register_forward_pre_hook(
            lambda m, i, s=state: s.__setitem__("x", i[0])))
        if block.downsample is None or isinstance(block.downsample, SubsamplePad):
            # relu(last(...) + shortcut(x)), the shortcut without parameters: shift the last BN
            short = block.downsample or (lambda x: x)
            hooks.append(last.register_forward_hook(
                lambda m, i, o, s=state, f=short: shift_bn_output(m, o, o + f(s["x"]))))
        else:  # relu(last(...) + downsample(x)): shift the downsample's BN
            hooks.append(last.register_forward_hook(
                lambda m, i, o, s=state: s.__setitem__("main", o.clone())))
            hooks.append(block.downsample[1].register_forward_hook(
                lambda m, i, o, s=state: shift_bn_output(m, o, o + s["main"])))
    with torch.no_grad():
        work(images_nchw.double())
        for name, d in shifts.items():
            bias = model.get_submodule(name).bias
            bias += d.to(bias.dtype)
    return max(float(d.abs().max()) for d in shifts.values())


def rel_err(ours, ref):
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    denom = np.linalg.norm(ref)
    diff = np.linalg.norm(ours - ref)
    return diff / denom if denom > 0 else diff


def update_err(new, old, expected_new):
    """Relative error of the step p_new - p_old beyond float32 rounding of p_new (2 ulp)."""
    new, old, expected_new = (np.asarray(a, dtype=np.float64).reshape(-1)
                              for a in (new, old, expected_new))
    ulp = np.spacing(np.abs(expected_new).astype(np.float32)).astype(np.float64)
    excess = np.maximum(np.abs(new - expected_new) - 2 * ulp, 0)
    denom = np.linalg.norm(expected_new - old)
    return np.linalg.norm(excess) / denom if denom > 0 else np.linalg.norm(excess)


def sgd_step(before, grads, names, hyper):
    """One float64 torch.optim.SGD step from the parameters `before` with gradients `grads`
    (both keyed by name) on `names`; returns (stepped parameters, momentum buffers)."""
    stepped = {k: before[k].double().clone() for k in names}
    for k, q in stepped.items():
        q.grad = grads[k]
    sgd = torch.optim.SGD(list(stepped.values()), **hyper)
    sgd.step()
    return stepped, {k: sgd.state[q]["momentum_buffer"] for k, q in stepped.items()}


def run_oracle_step(oracle_step, in_path, out_path, script):
    """Runs oracle_step on in_path; its stdout is echoed, a failure ends the script."""
    proc = subprocess.run([oracle_step, in_path, out_path], capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{script}: oracle_step failed with exit code {proc.returncode}")


def compare_common(f, logits, loss, buffers_after):
    """(relative error, what) of the logits, the loss and the buffers in oracle_step's output f."""
    errors = [(rel_err(f["logits"][()], logits.detach().numpy()), "logits"),
              (rel_err(f["loss"][()], [loss.item()]), "loss")]
    for name, t in buffers_after.items():
        errors.append((rel_err(f[f"buffers/{name}"][()], t.numpy()), f"buffer {name}"))
    return errors


def compare_param(f, name, grad, old, expected, momentum):
    """(relative error, what) of a trainable parameter's gradient, value, step and momentum."""
    new = f[f"params/{name}"][()]
    return [(rel_err(f[f"grads/{name}"][()], grad.numpy()), f"grad {name}"),
            (rel_err(new, expected), f"param {name}"),
            (update_err(new, old, expected), f"update {name}"),
            (rel_err(f[f"momentum/{name}"][()], momentum.numpy()), f"momentum {name}")]


def report(tag, errors, tolerance):
    """Prints the worst errors and those above tolerance (NaN counts as above); True if any."""
    errors = sorted(errors, key=lambda e: -e[0] if e[0] == e[0] else -float("inf"))
    bad = [e for e in errors if not e[0] <= tolerance]
    print(f"{tag}: {len(errors)} tensors compared, worst relative errors:")
    for err, what in errors[:6]:
        print(f"  {err:.3e}  {what}")
    if bad:
        print(f"{tag}: FAIL, {len(bad)} tensors above {tolerance:g}:")
        for err, what in bad[:20]:
            print(f"  {err:.3e}  {what}")
    return bool(bad)


def write_input(path, args, model, params, images, labels, hyper):
    with h5py.File(path, "w") as f:
        f.attrs["arch"] = args.arch
        f.attrs["num_classes"] = args.num_classes
        f.attrs["in_channels"] = 3
        f.attrs["shortcut"] = args.shortcut
        for k in ("lr", "momentum", "weight_decay"):
            f.attrs[k] = float(hyper[k])
        f.attrs["nesterov"] = int(hyper["nesterov"])
        for name, t in model.state_dict().items():
            group = "params" if name in params else "buffers"
            f[f"{group}/{name}"] = t.numpy()
        f["batch/images"] = images.numpy()
        f["batch/labels"] = labels.numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, choices=["resnet50", "resnet18_cifar", "resnet20"])
    p.add_argument("--shortcut", choices=["A", "B", "auto"], default="auto",
                   help="where a block's shape changes: A (resnet20's default) or B")
    p.add_argument("--oracle-step", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--margin", type=float, default=1e-4)
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()
    if args.shortcut == "auto":
        args.shortcut = default_shortcut(args.arch)
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(2)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    model = make_model(args.arch, args.num_classes, shortcut=args.shortcut)
    randomise_bn(model, gen)
    images = torch.randn(args.batch, args.size, args.size, 3, generator=gen)  # N,H,W,C
    labels = torch.randint(0, args.num_classes, (args.batch,), generator=gen, dtype=torch.int32)
    images_nchw = images.permute(0, 3, 1, 2)
    shift = separate_relu_inputs(model, images_nchw, args.margin)
    print(f"{args.arch}: BN biases shifted by at most {shift:.2e} to keep pre-ReLU values "
          f"{args.margin:g} away from 0")
    params = dict(model.named_parameters())
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # Reference forward/backward in float64 (shared by both optimizer variants).
    ref = copy.deepcopy(model).double().train()
    logits = ref(images_nchw.double())
    loss = nn.functional.cross_entropy(logits, labels.long())
    loss.backward()
    grads = {k: q.grad.detach().clone() for k, q in ref.named_parameters()}
    buffers_after = {k: v for k, v in ref.state_dict().items() if k not in params}

    failed = False
    for nesterov in (False, True):
        hyper = dict(lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
        stepped, momentum = sgd_step(before, grads, params, hyper)

        tag = f"{args.arch}{args.shortcut}_{'nesterov' if nesterov else 'momentum'}"
        in_path = os.path.join(args.workdir, f"{tag}_in.h5")
        out_path = os.path.join(args.workdir, f"{tag}_out.h5")
        write_input(in_path, args, model, params, images, labels, hyper)
        run_oracle_step(args.oracle_step, in_path, out_path, "torch_oracle.py")

        with h5py.File(out_path, "r") as f:
            errors = compare_common(f, logits, loss, buffers_after)
            for name in params:
                errors += compare_param(f, name, grads[name], before[name].double().numpy(),
                                        stepped[name].detach().numpy(), momentum[name])
        expected_count = 2 + 4 * len(params) + len(buffers_after)
        if len(errors) != expected_count:
            raise SystemExit(f"torch_oracle.py: compared {len(errors)} tensors, "
                             f"expected {expected_count}")
        failed |= report(tag, errors, args.tolerance)
    print("FAILED" if failed else "PASSED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
