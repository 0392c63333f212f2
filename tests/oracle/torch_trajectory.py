"""A multi-step PyTorch oracle of a whole `dptrain train` run: oracle_trajectory trains with
dptrain (train() in process, one rank, CPU) on a Fashion-MNIST subset (28x28 gray, or with
--canvas N the NxN three-channel images of rgb() for torchvision's own ImageNet-stem
classes, built here unmodified from torchvision.models) and writes its initial
weights, every step's samples and augmentation draws, and the final model; this script replays
the same steps in PyTorch from the same weights (SGD with momentum, weight decay and optionally
Nesterov, MultiStepLR stepped per iteration whose rate drops mid-run, label smoothing, random
crop + flip from dptrain's draws, BatchNorm in train mode) and compares:
  - every step's learning rate: equal (as float32);
  - every step's loss: relative difference <= LOSS_BAR;
  - the final parameters and BN running statistics: their relative L2 differences (the median
    and the largest of each kind) within NOISE_FACTOR times torch's own (below);
  - the final model in eval mode on held-out images: the same predicted class for each.
The bars come from float32 arithmetic, not from what passes. The two sides sum in different
orders (oneDNN vs torch's kernels), so each step's gradients differ by a few float32 ulps, and
SGD training is chaotic: such differences grow over the steps. So:
  - the first steps, before the growth, are held tightly: step 1's loss to 1e-5 relative (one
    forward pass of rounding), steps 1-5 to 1e-3; a semantic difference (a missed momentum
    term, smoothing, crop offset or flip) shows here;
  - the whole trajectory is held to PyTorch's own sensitivity, measured in the same test: torch
    replays the run again from weights perturbed by 1e-6 relative (a few ulps, the size of the
    differences between two correct implementations), and dptrain's deviation from the
    reference replay (largest step loss deviation, median and largest final-tensor deviation of
    parameters and of running statistics, held-out predictions that differ) must stay within
    NOISE_FACTOR times torch's own. Weight decay's effect grows slowly (lr x wd a step), so
    the recipes' decay is set high enough that torch's replay without it fails these bars, a
    control the test runs.

usage: torch_trajectory.py --oracle BIN --workdir DIR --arch resnet8|resnet18 [--canvas 40] [...]"""
import argparse
import gzip
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from torch_models import CIFAR_BLOCKS, make_model  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
FIRST_STEP_BAR = 1e-5
EARLY_STEPS, EARLY_BAR = 5, 1e-3
NOISE_FACTOR = 4.0
PERTURBATION = 1e-6


def read_idx(name):
    with gzip.open(os.path.join(FASHION, name)) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def rgb(gray, size, seed=5):
    """Three-channel size x size images for the ImageNet-stem models: each 28x28 item centred
    on the canvas, as itself, mirrored top to bottom and transposed in the three channels, plus
    uniform pixel noise in [0, 40). Both choices keep PyTorch's own trajectory calm enough for
    the bar below to mean something (resnet18, batch 16, lr 1e-4 to 3e-5, 100 steps, measured
    2026-12-02): on black backgrounds (constant regions) the 7x7 stem and its max-pool make the
    first gradient ~200x more sensitive to a 1e-6 weight perturbation (median over tensors
    4.5e-3, against 2e-5 with the noise); on a 32x32 canvas layer4 sees 1x1 maps (BatchNorm
    over 16 values per channel) and a 1e-6 perturbation grows ~10x further than on 40x40
    (2x2 maps): 2.4e-2 against 2.5e-3 median final-weight deviation at lr 3e-5."""
    n, o = len(gray), (size - 28) // 2
    canvas = np.zeros((n, size, size, 3), np.int32)
    for c, item in enumerate((gray, gray[:, ::-1], gray.transpose(0, 2, 1))):
        canvas[:, o:o + 28, o:o + 28, c] = item
    canvas += np.random.default_rng(seed).integers(0, 40, canvas.shape)
    return np.minimum(canvas, 255).astype(np.uint8)


def fashion_split(train, holdout, canvas):
    """The first `train` Fashion-MNIST training items and the next `holdout` ones: images
    {N,H,W,C} u8 (28x28x1, or rgb()'s canvas x canvas x 3) and labels."""
    images = read_idx("train-images-idx3-ubyte.gz")[:train + holdout]
    images = rgb(images, canvas) if canvas else images[..., None]
    labels = read_idx("train-labels-idx1-ubyte.gz")
    return ((images[:train], labels[:train]),
            (images[train:train + holdout], labels[train:train + holdout]))


def run_oracle(oracle, workdir, train_split, test_split, dptrain_args):
    """oracle_trajectory on these splits with these `dptrain train` options; returns
    trajectory.h5's path."""
    path = os.path.join(workdir, "input.h5")
    with h5py.File(path, "w") as f:
        f["train/images"], f["train/labels"] = train_split
        f["test/images"], f["test/labels"] = test_split
        f.attrs["args"] = [str(a) for a in dptrain_args]
    proc = subprocess.run([oracle, path, workdir], stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, stderr=proc.stderr)
    return os.path.join(workdir, "trajectory.h5")


def resnet_args(args):
    """The run's `dptrain train` options: the step schedule and this script's recipe."""
    flag = {0: "false", 1: "true"}
    return ["--arch", args.arch, "--seed", args.seed, "--epochs", args.epochs,
            "--batch-size", args.batch_size, "--lr", args.lr, "--momentum", args.momentum,
            "--nesterov", flag[args.nesterov], "--weight-decay", args.weight_decay,
            "--label-smoothing", args.label_smoothing, "--crop-padding", args.crop_padding,
            "--flip", flag[args.flip], "--lr-schedule", "step",
            "--lr-milestones", ",".join(str(m) for m in args.milestones),
            "--lr-gamma", args.gamma]


def augment(raw, crops, flips, pad, mean, std, reflect=False):
    """data::Augmenter: pad in uint8 (zeros, or torch's 'reflect': the edge pixel not
    repeated), crop at the draw, mirror the crop, v / 255, normalise (f32)."""
    n, h, w, c = raw.shape
    if reflect:
        padded = np.pad(raw, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    else:
        padded = np.zeros((n, h + 2 * pad, w + 2 * pad, c), np.uint8)
        padded[:, pad:pad + h, pad:pad + w] = raw
    out = np.stack([padded[i, cy:cy + h, cx:cx + w] for i, (cy, cx) in enumerate(crops)])
    out = np.where(flips[:, None, None, None] != 0, out[:, :, ::-1], out)
    x = out.astype(np.float32) / np.float32(255)
    x = (x - mean.astype(np.float32)) / std.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def torch_model(arch, channels):
    """The CIFAR ResNets from tests/bench/torch_models.py (the architecture's default shortcut,
    as dptrain); the ImageNet-stem ones are torchvision's own classes, unmodified."""
    if arch in CIFAR_BLOCKS:
        return make_model(arch, 10, channels)
    if channels != 3:
        raise SystemExit(f"{arch}: torchvision's stem takes 3 channels, the images have {channels}")
    return getattr(torchvision.models, arch)(num_classes=10)


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    d = np.linalg.norm(b)
    return np.linalg.norm(a - b) / d if d > 0 else np.linalg.norm(a - b)


def initial_state(traj, perturbation=0.0):
    """dptrain's initial weights; with `perturbation`, every float multiplied by
    (1 + perturbation * N(0, 1)), fixed seed."""
    rng = np.random.default_rng(1)
    state = {}
    for k in traj["initial"]:
        a = traj["initial"][k][()]
        if perturbation and not k.endswith("num_batches_tracked"):
            a = (a * (1 + perturbation * rng.standard_normal(a.shape))).astype(np.float32)
        state[k] = torch.from_numpy(a)
    return state


def make_optimizer(args, net):
    """torch's SGD and MultiStepLR stepped per iteration, as the run's options say."""
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum,
                          nesterov=bool(args.nesterov), weight_decay=args.weight_decay)
    steps_per_epoch = args.train // args.batch_size
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, [int(round(m * steps_per_epoch)) for m in args.milestones], args.gamma)
    return opt, sched


def sgd_step(net, opt, sched, loss_fn, x, y):
    """One training step; returns (the step's learning rate, its loss tensor)."""
    lr = opt.param_groups[0]["lr"]
    opt.zero_grad()
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
    sched.step()
    return lr, loss


def replay(args, traj, state, images, labels):
    model = torch_model(args.arch, traj["initial/conv1.weight"].shape[1])
    model.load_state_dict(state, strict=True)
    opt, sched = make_optimizer(args, model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    plan = traj["plan"]
    mean, std = traj.attrs["mean"], traj.attrs["std"]
    losses, lrs = [], []
    model.train()
    for s in range(plan["indices"].shape[0]):
        idx = plan["indices"][s]
        x = augment(images[idx], plan["crop"][s], plan["flip"][s], args.crop_padding, mean, std)
        y = torch.from_numpy(labels[idx].astype(np.int64))
        lr, loss = sgd_step(model, opt, sched, loss_fn, x, y)
        lrs.append(lr)
        losses.append(loss.item())
    return model, np.array(losses), np.array(lrs)


def eval_logits(model, x):
    """The model's logits for the images `x` in eval mode."""
    model.eval()
    with torch.no_grad():
        return model(x).numpy()


def trained_run(model, losses, lrs, x_holdout):
    """A replay's record as compare() reads it: every step's loss and learning rate, the final
    state and the model's held-out logits."""
    final = {k: v.numpy() for k, v in model.state_dict().items()}
    return {"loss": np.array(losses), "lr": np.array(lrs), "final": final,
            "holdout": eval_logits(model, x_holdout)}


def run_torch(args, traj, state, images, labels, x_holdout):
    model, losses, lrs = replay(args, traj, state, images, labels)
    return trained_run(model, losses, lrs, x_holdout)


def final_deviations(a, ref):
    """Per kind of final tensor (parameters, BN running statistics; `a` and `ref` map names
    to arrays): the median and the largest relative deviation."""
    kinds = {"parameters": [k for k in ref if "running_" not in k and "num_batches" not in k],
             "running stats": [k for k in ref if "running_" in k]}
    out = {}
    for kind, keys in kinds.items():
        devs = [rel(a[k], ref[k]) for k in keys]
        out[kind] = (float(np.median(devs)), float(np.max(devs)))
    return out


def final_failures(mine, own, indent=""):
    """The final-tensor bars: each kind's median and largest deviation (final_deviations)
    within NOISE_FACTOR times torch's own; printed beside it."""
    failures = []
    for kind in mine:
        print(f"{indent}final {kind}: median {mine[kind][0]:.1e}, largest {mine[kind][1]:.1e} "
              f"(torch's own {own[kind][0]:.1e}, {own[kind][1]:.1e})")
        for i, what in enumerate(("median", "largest")):
            if mine[kind][i] > NOISE_FACTOR * own[kind][i] + 1e-6:
                failures.append(f"final {kind}: {what} deviation {mine[kind][i]:.1e} > "
                                f"{NOISE_FACTOR} x torch's own")
    return failures


def deviations(a, ref):
    """Per-step relative loss deviations; the final tensors' (final_deviations); held-out
    predictions that differ."""
    loss = np.abs(a["loss"] - ref["loss"]) / np.abs(ref["loss"])
    flips = int((a["holdout"].argmax(1) != ref["holdout"].argmax(1)).sum())
    return loss, final_deviations(a["final"], ref["final"]), flips


def loss_failures(loss, noise):
    """The step-loss bars, on per-step relative deviations from the reference: `loss` the
    implementation's under test, `noise` PyTorch's own twin's."""
    failures = []
    if loss[0] > FIRST_STEP_BAR:
        failures.append(f"step 1 loss deviates {loss[0]:.1e} > {FIRST_STEP_BAR}")
    if loss[:EARLY_STEPS].max() > EARLY_BAR:
        failures.append(f"early step loss deviates {loss[:EARLY_STEPS].max():.1e} > {EARLY_BAR}")
    if loss.max() > NOISE_FACTOR * noise.max() + 1e-6:
        failures.append(f"step loss deviation {loss.max():.1e} > {NOISE_FACTOR} x torch's own")
    return failures


def compare(args, ours, reference, perturbed, who="dptrain"):
    failures = []
    steps = len(reference["loss"])
    if len(ours["loss"]) != steps or steps < 100:
        return [f"{len(ours['loss'])} dptrain steps, {steps} replayed (need >= 100)"]
    # The float32 the update multiplies by (torch's SGD rounds its Python float lr once).
    lr_off = np.flatnonzero(ours["lr"].astype(np.float32) != reference["lr"].astype(np.float32))
    if lr_off.size:
        at = lr_off[0]
        failures.append(f"lr differs from MultiStepLR's as float32 at {lr_off.size} steps, first "
                        f"step {at}: {ours['lr'][at]!r} against {reference['lr'][at]!r}")
    loss, weights, flips = deviations(ours, reference)
    noise_loss, noise_weights, noise_flips = deviations(perturbed, reference)
    print(f"{args.arch}: {steps} steps, lr {reference['lr'][0]:g} -> {reference['lr'][-1]:g}, "
          f"loss {reference['loss'][0]:.4f} -> {reference['loss'][-1]:.4f}")
    print(f"  {who} vs torch: step 1 {loss[0]:.1e}, steps 1-{EARLY_STEPS} {loss[:EARLY_STEPS].max():.1e}, "
          f"all steps {loss.max():.1e}; held-out predictions differing "
          f"{flips}/{len(reference['holdout'])}")
    print(f"  torch vs torch from weights x (1 + {PERTURBATION:g} N(0,1)): all steps "
          f"{noise_loss.max():.1e}; predictions differing {noise_flips}")
    failures += loss_failures(loss, noise_loss)
    failures += final_failures(weights, noise_weights, indent="  ")
    if flips > NOISE_FACTOR * noise_flips + 1:
        failures.append(f"{flips} held-out predictions differ > {NOISE_FACTOR} x torch's own + 1")
    return failures


def control_must_fail(args, control, reference, perturbed, who, remedy):
    """A control replay, one semantic changed, must fail the bars: [] when it does, else the
    failure saying the bars cannot tell."""
    fails = compare(args, control, reference, perturbed, who=who)
    print(f"  {who} fails {len(fails)} bar(s): {fails}")
    return [] if fails else [f"{who} passes the bars too: they cannot tell ({remedy})"]


def exit_with(failures):
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--oracle", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--arch", default="resnet8")
    p.add_argument("--train", type=int, default=2048)
    p.add_argument("--holdout", type=int, default=256)
    p.add_argument("--canvas", type=int, default=0, help="rgb()'s images of this size, not 28x28 gray")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--crop-padding", type=int, default=2)
    p.add_argument("--flip", type=int, default=1)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--gamma", type=float, default=0.2)
    p.add_argument("--milestones", type=float, nargs="+", default=[2.0])
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(args.workdir, exist_ok=True)
    train_split, test_split = fashion_split(args.train, args.holdout, args.canvas)
    traj_path = run_oracle(args.oracle, args.workdir, train_split, test_split, resnet_args(args))
    (images, labels), (holdout, _) = train_split, test_split
    with h5py.File(traj_path) as traj, \
            h5py.File(os.path.join(args.workdir, "run", "metrics.h5")) as metrics:
        ours = {"loss": metrics["steps/loss"][()], "lr": metrics["steps/lr"][()],
                "final": {k: traj["final"][k][()] for k in traj["final"]},
                "holdout": traj["holdout/views"][0]}  # --tta 0: the plain image only
        mean, std = traj.attrs["mean"], traj.attrs["std"]
        n = len(holdout)
        x_holdout = augment(holdout, np.zeros((n, 2), np.int64), np.zeros(n, np.uint8), 0, mean, std)
        reference = run_torch(args, traj, initial_state(traj), images, labels, x_holdout)
        perturbed = run_torch(args, traj, initial_state(traj, PERTURBATION), images, labels,
                              x_holdout)
        failures = compare(args, ours, reference, perturbed)
        # The control: the same replay without weight decay must fail these bars (the test's
        # settings make the decay large enough to be seen; it is the smallest of the semantic
        # differences the bars are for).
        control = run_torch(argparse.Namespace(**{**vars(args), "weight_decay": 0.0}), traj,
                            initial_state(traj), images, labels, x_holdout)
        failures += control_must_fail(args, control, reference, perturbed,
                                      "the replay without weight decay", "raise --weight-decay")
    exit_with(failures)


if __name__ == "__main__":
    main()
