#!/usr/bin/python3
"""The multi-step PyTorch oracle of the whole airbench94 recipe (issue 20): oracle_trajectory
trains dptrain with every option of jobs/cifar10_94_fast.cfg, read from a copy of that file in
which only the epoch count, the batch size and the whitening bias's epochs are changed, on a
hundred 32x32x3 Fashion-MNIST images (rgb() of torch_trajectory.py); this script replays the
run in PyTorch written from the published description: the network of torch_oracle_airbench.py,
the recipe's hyper-parameters and pieces from the PyTorch peer (tests/bench/pytorch_airbench94.py:
SGD groups, schedule, Lookahead, whitening, TTA), fed dptrain's samples and augmentation draws.
Nothing of dptrain is imported. The default run (batch 16, 101 images, 3.3 epochs: 6 steps an
epoch, 5 images dropped, T = 20) has the warm-up and the decay, Lookahead after steps 5, 10,
15, 20 and the final average, the whitening bias frozen from epoch 3, flips in four epochs and
a cut last epoch; check_run_shape refuses options that lose one of these. It compares:
  - the whitening filters: dptrain's initial whiten.weight against torch's own float64
    eigendecomposition of the same normalised patches. Eigenvectors have a sign freedom and
    [+W; -W] makes each pair sign-invariant: the second half must be the first negated
    exactly, and each filter must match torch's up to sign to WHITEN_BAR;
  - the data plan against the description: floor(N / batch) steps an epoch, T = ceil(epochs x
    that), shifts -2..2 on reflect padding, every image's flip inverted from epoch to epoch
    (the replay applies the mirror to the crop, as dptrain's draws mean it; the published
    loader mirrors before padding, which gives the same distribution);
  - every step's learning rate per optimizer group (equal as float32: LR_BAR) and the groups'
    momentum, Nesterov and lr x weight decay; the groups frozen where the description freezes
    them, their parameters bit for bit unchanged over each frozen step without a Lookahead
    update, the whitening weight and the BN scales over the whole run;
  - every step's loss, the Lookahead-averaged final parameters and BN running statistics, and
    the TTA-level-2 predictions on held-out images, against the replay in float64 (the
    description in exact arithmetic), with torch_trajectory.py's bars: step 1 to 1e-5, steps
    1-5 to 1e-3, and the whole trajectory within NOISE_FACTOR of PyTorch's own float32
    replay's deviation from the float64 one (largest step loss deviation; median and largest
    final deviation of the parameters and of the running statistics; predictions differing).
    For the largest running-statistics deviation PyTorch's own is the larger of two float32
    replays, NCHW and channels_last, which run different kernels: running means of nearly
    cancelling values take their rounding from the kernel's summation order (airbench95's
    block3.norm2.running_mean deviated 2.1e-6 in NCHW, 3.8e-6 in channels_last; dptrain's
    9.6e-6, over 4x the NCHW one alone);
  - the evaluation, on dptrain's final weights: its six views (dptrain's logits under each)
    against the description's (the image, its mirror, the reflect-padded crops at (0, 0) and
    (2, 2) and their mirrors, weighted 1/4, 1/4, 1/8 x 4) in torch, each and averaged, to
    FORWARD_BAR; and the run's own final evaluation (metrics.h5 /final, --tta 2) against
    them: loss to FORWARD_BAR, accuracy equal but for near-tied images.
Why float64 and not torch_trajectory.py's perturbed replay: this network has no ReLU kinks, so
its trajectory is calm and what moves it off course are discrete max-pool choices (the final
3x3 pool hands a channel's whole gradient to one of 9 values). A float32 replay can take a
near-tied window the other way than exact arithmetic does; PyTorch's float32 replay and its
twin perturbed by 1e-6 then agree with each other and both leave the float64 trajectory, so
the perturbation measures nothing there. The float32 replay's distance from float64 is
PyTorch's own rounding on this very trajectory. dptrain runs its convolutions direct
(DPTRAIN_CPU_CONV=direct): its default Winograd rounds coarser than any direct float32
convolution (README, CPU backend knobs), which on this calm trajectory alone exceeds the bar;
the bars hold the recipe's semantics at float32's own resolution.
Bars: FORWARD_BAR = 1e-5 is one float32 forward pass of rounding (as FIRST_STEP_BAR).
WHITEN_BAR = 1e-6: the filters are float32 (2^-24 = 6e-8 relative each); the float64
eigenvectors differ by about 2^-52 ||Sigma|| / gap, under 1e-8 where the smallest eigen-gap is
at least 1e-7 of the largest eigenvalue, which the script requires (below it a filter is
ill-defined). LR_BAR = 1e-6: the config files write the recipe's lr and decay as 8-digit decimals
(1.2737772e-3 for airbench95's 10 / (1024 x (1 + 1 / 0.15)), 2e-8 off).

--variant 95 does the same for airbench95 (jobs/cifar10_95_fast.cfg, its Lookahead start moved
to epoch 2 by --lookahead-start-epoch 1: the average starts after step 10, the weights become it
at the ends of epochs 2 and 3 and after step 20).

usage: torch_trajectory_airbench.py --oracle BIN --workdir DIR [--variant 94|95] [--train N]
       [--batch-size B] [--epochs E] [--bias-epochs K] [--lookahead-start-epoch S]
       [--holdout M]"""
import argparse
import contextlib
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import pytorch_airbench94 as recipe  # noqa: E402
from torch_oracle_airbench import Airbench94  # noqa: E402
from torch_trajectory import (EARLY_STEPS, NOISE_FACTOR, augment, fashion_split,  # noqa: E402
                              final_deviations, final_failures, initial_state, loss_failures,
                              rel, run_oracle)

CONFIGS = {v: os.path.join(HERE, "..", "..", "jobs", f"cifar10_{v}_fast.cfg")
           for v in ("94", "95")}
FORWARD_BAR = 1e-5
WHITEN_BAR = 1e-6
LR_BAR = 1e-6  # the config files' 8-digit decimals for the recipe's lr and decay
SKIPPED = 77  # CTest's SKIP_RETURN_CODE for this test
ORIGINAL_CONV2D = F.conv2d
ORIGINAL_GELU = F.gelu
ORIGINAL_BATCH_NORM = F.batch_norm
ORIGINAL_MAX_POOL2D = F.max_pool2d
# The description's TTA level 2, in dptrain's view order: (diagonal shift, mirror, weight);
# shifted views are reflect-padded by 1 and cropped at (1 + shift, 1 + shift).
TTA_VIEWS = [(0, False, 0.25), (0, True, 0.25), (-1, False, 0.125), (-1, True, 0.125),
             (1, False, 0.125), (1, True, 0.125)]


def round_to_bf16(t):
    """t rounded to the nearest bfloat16, kept in t's dtype."""
    return t.to(torch.bfloat16).to(t.dtype)


class Bf16Convolution(torch.autograd.Function):
    """dptrain's --precision bf16 convolution (README, CPU backend): the input, the weight
    and, in backward, the output gradient each rounded to bf16 once; the products summed in
    the tensors' own dtype (float64: exactly; float32: as dptrain's f32 accumulation)."""

    @staticmethod
    def forward(ctx, x, w, stride, padding):
        xr, wr = round_to_bf16(x), round_to_bf16(w)
        ctx.save_for_backward(xr, wr)
        ctx.geometry = (stride, padding)
        return ORIGINAL_CONV2D(xr, wr, None, stride, padding)

    @staticmethod
    def backward(ctx, dy):
        xr, wr = ctx.saved_tensors
        stride, padding = ctx.geometry
        dyr = round_to_bf16(dy)
        dx = (torch.nn.grad.conv2d_input(xr.shape, wr, dyr, stride, padding)
              if ctx.needs_input_grad[0] else None)
        dw = (torch.nn.grad.conv2d_weight(xr, wr.shape, dyr, stride, padding)
              if ctx.needs_input_grad[1] else None)
        return dx, dw, None, None


class Bf16Activation(torch.autograd.Function):
    """An activation dptrain's CPU backend stores in bf16 under --precision bf16 (airbench's
    every activation and activation gradient): its value rounded to bf16 and, in backward, the
    gradient that reaches it too (the op that consumed it computes that gradient in f32 and
    writes bf16)."""

    @staticmethod
    def forward(ctx, y):
        return round_to_bf16(y)

    @staticmethod
    def backward(ctx, dy):
        return round_to_bf16(dy)


def conv2d_bf16(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv2d's signature. The output is a bf16 activation; a bias (the whitening layer's) is
    added, unrounded, before that rounding, as dptrain's fused convolution + bias + GELU does."""
    if dilation not in (1, (1, 1)) or groups != 1:
        raise SystemExit("conv2d_bf16: dilation and groups are not in this network")
    y = Bf16Convolution.apply(x, w, stride, padding)
    return Bf16Activation.apply(y if bias is None else y + bias.view(1, -1, 1, 1))


def gelu_bf16(x, approximate="none"):
    return Bf16Activation.apply(ORIGINAL_GELU(x, approximate=approximate))


def batch_norm_bf16(*args, **kwargs):
    """Statistics in the input's dtype from its (bf16) values; the output a bf16 activation."""
    return Bf16Activation.apply(ORIGINAL_BATCH_NORM(*args, **kwargs))


def max_pool2d_bf16(*args, **kwargs):
    """Exact on bf16 values; its output is a bf16 activation, so the gradient the op above
    hands back (batch norm's, or the linear layer's) is rounded."""
    return Bf16Activation.apply(ORIGINAL_MAX_POOL2D(*args, **kwargs))


BF16_OPS = {"conv2d": conv2d_bf16, "gelu": gelu_bf16, "batch_norm": batch_norm_bf16,
            "max_pool2d": max_pool2d_bf16}
ORIGINAL_OPS = {"conv2d": ORIGINAL_CONV2D, "gelu": ORIGINAL_GELU,
                "batch_norm": ORIGINAL_BATCH_NORM, "max_pool2d": ORIGINAL_MAX_POOL2D}


@contextlib.contextmanager
def computed_as(precision):
    """Every F.conv2d, F.gelu, F.batch_norm and F.max_pool2d (the nn modules' too) as dptrain's
    --precision computes them: in bf16, convolutions on bf16 operands and every activation
    between the ops (and its gradient) rounded to bf16; the linear head and the logits f32."""
    for name, op in (BF16_OPS if precision == "bf16" else ORIGINAL_OPS).items():
        setattr(F, name, op)
    try:
        yield
    finally:
        for name, op in ORIGINAL_OPS.items():
            setattr(F, name, op)


def recipe_config(path, out, overrides):
    """A copy of the config file with each (key, value prefix) of `overrides` given its new
    value; each must match exactly one `key = value` line, so a changed recipe fails here."""
    with open(path) as f:
        lines = f.read().splitlines()
    for (key, prefix), value in overrides.items():
        hits = [i for i, line in enumerate(lines)
                if (m := re.fullmatch(r"\s*([\w-]+)\s*=\s*(.*?)\s*", line))
                and m[1] == key and m[2].startswith(prefix)]
        if len(hits) != 1:
            raise SystemExit(f"{path}: {len(hits)} lines '{key} = {prefix}...', expected one")
        lines[hits[0]] = f"{key} = {value}"
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def description_tta_views(model, x):
    """The logits of each of TTA_VIEWS: F.pad(x, 1, 'reflect') cropped, then mirrored."""
    padded = F.pad(x, (1,) * 4, mode="reflect")
    h, w = x.shape[2:]
    out = []
    with torch.no_grad():
        for shift, mirror, _ in TTA_VIEWS:
            v = padded[:, :, 1 + shift:1 + shift + h, 1 + shift:1 + shift + w]
            out.append(model(v.flip(3) if mirror else v).numpy())
    return np.stack(out)


def widths_of(state):
    """The block widths of an airbench state (airbench94's or airbench95's)."""
    return tuple(state[f"block{b}.conv1.weight"].shape[0] for b in (1, 2, 3))


def run_variant(args):
    """The recipe variant this run replays: the peer's, with the epochs and Lookahead start of
    the shrunk run."""
    v = recipe.VARIANTS[args.variant]
    start = args.lookahead_start_epoch if v.lookahead_start_epoch else 0
    return recipe.Variant(v.widths, args.epochs, v.lr, start, v.lookahead_each_epoch)


def lookahead_moves(total, per_epoch, variant):
    """Per step 1..T: whether Lookahead may move the weights after it (an update with a decay,
    an epoch's end once started, or T); a late start itself moves nothing, and a start past T
    leaves every step still."""
    schedule = recipe.LookaheadSchedule(variant, total)
    moves = np.zeros(total, bool)
    for t in range(1, total + 1):
        started = schedule.started
        update = schedule.after_step(t, (t - 1) // per_epoch) is not None
        epoch_end = t % per_epoch == 0 and schedule.averages_at_epoch_end()
        moves[t - 1] = started and (update or epoch_end or t == total)
    return moves


def eval_model(state, dtype=torch.float32):
    """A model in `dtype` in eval mode holding `state` (numpy arrays of any float type)."""
    model = Airbench94(widths_of(state)).to(dtype)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return model.eval()


def tta2(model, x):
    """The peer's TTA level 2 (its composition of the description's views)."""
    with torch.no_grad():
        return recipe.tta_logits(model, x, 2)[2].numpy()


def replay(plan, state, images, labels, norm, args, dtype, channels_last=False):
    """The run in PyTorch, in `dtype`: [shifts, others] SGD groups with the description's
    rates and decay, Nesterov 0.85, the summed label-smoothed loss, the whitening bias trained
    for the first args.bias_epochs epochs, Lookahead every 5 steps and at the end (airbench95:
    from its start epoch on, and at every epoch's end)."""
    variant = run_variant(args)
    model = Airbench94(variant.widths).to(dtype)
    model.load_state_dict(state, strict=True)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    model.whiten.weight.requires_grad_(False)  # frozen for the whole run
    groups = recipe.param_groups(model, variant.lr)
    opt = torch.optim.SGD(groups, momentum=recipe.MOMENTUM, nesterov=True)
    per_epoch = len(images) // args.batch_size
    total = recipe.total_steps(per_epoch, args.epochs)
    lookahead = recipe.RecipeLookahead(model, variant, total)
    pad, reflect = int(plan.attrs["padding"]), bool(plan.attrs["reflect"])
    out = {"loss": [], "lr": [], "bias_trains": []}
    model.train()
    for s in range(min(total, plan["indices"].shape[0])):
        model.whiten.bias.requires_grad_(s // per_epoch < args.bias_epochs)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * recipe.lr_factor(s, total)
        idx = plan["indices"][s]
        x = augment(images[idx], plan["crop"][s], plan["flip"][s], pad, *norm, reflect).to(dtype)
        x = x.contiguous(memory_format=fmt)
        y = torch.from_numpy(labels[idx].astype(np.int64))
        loss = F.cross_entropy(model(x), y, label_smoothing=recipe.LABEL_SMOOTHING,
                               reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lookahead.after_step(s + 1, s // per_epoch)
        if (s + 1) % per_epoch == 0:
            lookahead.end_epoch()
        out["loss"].append(loss.item() / len(idx))
        out["lr"].append([g["lr"] for g in opt.param_groups])
        out["bias_trains"].append(model.whiten.bias.requires_grad)
    lookahead.end_run()
    out.update(total=total, per_epoch=per_epoch, variant=variant,
               final={k: v.numpy() for k, v in model.state_dict().items()})
    return out


def check_whitening(initial, images, norm):
    n = min(recipe.WHITEN_IMAGES, len(images))
    x = augment(images[:n], np.zeros((n, 2), np.int64), np.zeros(n, np.uint8), 0, *norm)
    lam, filters = recipe.whitening_filters(recipe.patches_2x2(x))
    ref = filters.numpy().reshape(len(lam), -1)
    ours = initial.reshape(2 * len(lam), -1).astype(np.float64)
    d, lam = len(lam), lam.numpy()
    gap = float(np.min(lam[:-1] - lam[1:]) / lam[0])
    dev = max(min(rel(ours[i], ref[i]), rel(ours[i], -ref[i])) for i in range(d))
    print(f"whitening: {d} filters from {n} images, eigenvalues {lam[0]:.3g}..{lam[-1]:.3g} "
          f"(smallest gap {gap:.1e} of the largest); largest filter deviation up to sign "
          f"{dev:.1e}")
    failures = []
    if gap < 1e-7:
        failures.append(f"eigen-gap {gap:.1e}: the filters are ill-defined here")
    if not np.array_equal(ours[d:], -ours[:d]):
        failures.append("whiten.weight is not [+W; -W]")
    if dev > WHITEN_BAR:
        failures.append(f"whitening filters deviate {dev:.1e} > {WHITEN_BAR} from torch's eigh")
    return failures


def check_run_shape(ref, n, args):
    """The options must give a run that shows each feature the oracle is for."""
    per_epoch, total = ref["per_epoch"], ref["total"]
    frozen = ~np.array(ref["bias_trains"])
    moves = lookahead_moves(total, per_epoch, ref["variant"])
    quiet = frozen & ~moves
    peak = int(np.argmax(ref["lr"][:, 1]))
    wanted = {"a partial batch to drop": n % args.batch_size != 0,
              "a last epoch cut short": total % per_epoch != 0,
              "flips in three epochs or more": total > 2 * per_epoch,
              "three Lookahead updates or more": moves.sum() >= 3,
              "the whitening bias trained, then frozen over a step without Lookahead":
                  not frozen[0] and quiet.any(),
              "the warm-up and the decay": 0 < peak < total - 1}
    variant = ref["variant"]
    if variant.lookahead_start_epoch:
        ends = np.arange(per_epoch, total, per_epoch)  # epoch ends before T
        wanted["a Lookahead start after step 5"] = not moves[recipe.LOOKAHEAD_EVERY - 1]
        wanted["an epoch's end averaged before T"] = (not variant.lookahead_each_epoch or
                                                     bool(moves[ends - 1].any()))
    return [f"the options give no run with {what}" for what, ok in wanted.items() if not ok]


def check_plan(plan, ref, batch):
    """dptrain's plan against the description's data order and augmentation."""
    epoch, crop, flip = plan["epoch"][()], plan["crop"][()], plan["flip"][()]
    indices = plan["indices"][()]
    per_epoch, total = ref["per_epoch"], ref["total"]
    counts = np.bincount(epoch)[1:]
    print(f"plan: {len(epoch)} steps, per epoch {counts.tolist()} of batch {batch}; shifts "
          f"{crop.min() - recipe.TRANSLATE}..{crop.max() - recipe.TRANSLATE}, epoch 1 flips "
          f"{flip[epoch == 1].mean():.2f}")
    failures = []
    expected = [per_epoch] * (total // per_epoch) + [total % per_epoch] * (total % per_epoch > 0)
    if counts.tolist() != expected:
        failures.append(f"steps per epoch {counts.tolist()}, the description's {expected}")
    if int(plan.attrs["padding"]) != recipe.TRANSLATE or int(plan.attrs["reflect"]) != 1:
        failures.append("translate must be reflect padding by 2")
    if crop.min() != 0 or crop.max() != 2 * recipe.TRANSLATE:
        failures.append(f"crop offsets {crop.min()}..{crop.max()}, not 0..{2 * recipe.TRANSLATE}")
    by_epoch = [dict(zip(indices[epoch == e].ravel(), flip[epoch == e].ravel()))
                for e in range(1, len(counts) + 1)]
    for e, (a, b) in enumerate(zip(by_epoch, by_epoch[1:]), 1):
        both = a.keys() & b.keys()
        same = sum(a[i] == b[i] for i in both)
        if not both or same:
            failures.append(f"epochs {e}, {e + 1}: {same} of {len(both)} images keep their flip")
    if any(len(d) != counts[e] * batch for e, d in enumerate(by_epoch)):
        failures.append("an image appears twice in one epoch")
    if not 0.3 < flip[epoch == 1].mean() < 0.7:  # a random half (fixed seed: deterministic)
        failures.append("epoch 1 does not flip about half of the images")
    return failures


def group_map(names):
    """dptrain group -> index of the torch group it must match (None: no torch group)."""
    expected = {"freeze:whiten.weight": None, "freeze:whiten.bias": 1, "bn_bias": 0,
                "default": 1}
    if sorted(names) != sorted(expected):
        raise SystemExit(f"dptrain's groups {names}, the recipe makes {sorted(expected)}")
    return [expected[n] for n in names]


def check_group(groups, g, name, t, ref):
    """dptrain's group g, called `name`, against torch group t (None: not trained)."""
    failures = []
    wd = recipe.DECAY / (ref["variant"].lr * (recipe.BN_LR_SCALE if t == 0 else 1.0))
    if t is not None and abs(groups["weight_decay"][g] - wd) > LR_BAR * wd:
        failures.append(f"{name}: weight decay {groups['weight_decay'][g]:.6g}, the "
                        f"description's {wd:.6g} (lr x decay = {recipe.DECAY} per step)")
    if abs(groups["momentum"][g] - recipe.MOMENTUM) > 1e-7 or not groups["nesterov"][g]:
        failures.append(f"{name}: momentum {groups['momentum'][g]:.6g}, nesterov "
                        f"{groups['nesterov'][g]}: not Nesterov {recipe.MOMENTUM}")
    frozen = groups["frozen"][:, g] != 0
    should = np.array([t is None or (name == "freeze:whiten.bias" and not trains)
                       for trains in ref["bias_trains"]])
    if not np.array_equal(frozen, should):
        failures.append(f"{name}: frozen at steps {np.flatnonzero(frozen) + 1}, the "
                        f"description's {np.flatnonzero(should) + 1}")
    if t is not None:
        dev = np.abs(groups["lr"][:, g] - ref["lr"][:, t]) / ref["lr"][:, t]
        if dev.max() > LR_BAR:
            failures.append(f"{name}: lr deviates {dev.max():.1e} at step {dev.argmax() + 1}")
    # Over a frozen step only a Lookahead update (lookahead_moves) may move the group; every
    # step moves a trained one.
    quiet = should & ~lookahead_moves(len(should), ref["per_epoch"], ref["variant"])
    change = groups["change"][:, g]
    if np.any(change[quiet] != 0) or np.any(change[~should] == 0):
        failures.append(f"{name}: moved over a frozen step or stood still over a trained one")
    return failures


def check_groups(groups, ref):
    names = [n.decode() if isinstance(n, bytes) else n for n in groups.attrs["names"]]
    failures = []
    for g, (name, t) in enumerate(zip(names, group_map(names))):
        failures += check_group(groups, g, name, t, ref)
    lr = ref["lr"][:, 1]
    print(f"groups: {', '.join(names)}; lr {lr[0]:.3g} -> {lr.max():.3g} -> {lr[-1]:.3g} "
          f"(others); whitening bias frozen from step {ref['bias_trains'].index(False) + 1}")
    return failures


def check_trajectory(ours, ref, twins):
    """dptrain's and torch's float32 twins' deviations from the float64 reference. Torch's own
    is its NCHW twin's, but for the largest running-statistics deviation: the larger of its
    NCHW and channels_last twins' (see the module docstring)."""
    failures = []
    twin = twins[0]
    loss = np.abs(ours["loss"] - ref["loss"]) / ref["loss"]
    noise = np.abs(twin["loss"] - ref["loss"]) / ref["loss"]
    print(f"losses: {ref['loss'][0]:.4f} -> {ref['loss'][-1]:.4f}; dptrain vs float64 torch: "
          f"step 1 {loss[0]:.1e}, steps 1-{EARLY_STEPS} {loss[:EARLY_STEPS].max():.1e}, all "
          f"{loss.max():.1e} (float32 torch {noise.max():.1e})")
    failures += loss_failures(loss, noise)
    mine = final_deviations(ours["final"], ref["final"])
    own = final_deviations(twin["final"], ref["final"])
    own["running stats"] = (own["running stats"][0], max(
        final_deviations(t["final"], ref["final"])["running stats"][1] for t in twins))
    failures += final_failures(mine, own)
    flips = int((ours["tta"].argmax(1) != ref["tta"].argmax(1)).sum())
    noise_flips = int((twin["tta"].argmax(1) != ref["tta"].argmax(1)).sum())
    print(f"TTA-2 held-out predictions differing: {flips} (float32 torch {noise_flips}) of "
          f"{len(ref['tta'])}")
    if flips > NOISE_FACTOR * noise_flips + 1:
        failures.append(f"{flips} held-out predictions differ > {NOISE_FACTOR} x torch's own + 1")
    return failures


def check_frozen_tensors(initial, final, ref_final):
    """The whitening weight and the BN scales exactly as they started; the BN step counts as
    torch's (Lookahead leaves them alone)."""
    failures = []
    if not np.array_equal(initial["whiten.weight"], final["whiten.weight"]):
        failures.append("whiten.weight changed over the run")
    for k in final:
        if re.fullmatch(r"block\d\.norm\d\.weight", k) and not np.all(final[k] == 1):
            failures.append(f"{k}: the fixed BN scale moved off 1")
        if k.endswith("num_batches_tracked") and final[k] != ref_final[k]:
            failures.append(f"{k}: {final[k]}, torch {ref_final[k]}")
    return failures


def forward_bar(precision, state, x):
    """The bar on dptrain's forward passes: FORWARD_BAR in float32; in bf16, where an f32
    sum that differs in its last bit can round a layer's next input to the neighbouring bf16
    value, NOISE_FACTOR x PyTorch's own float32 views' deviation from float64 ones on the same
    weights, plus FORWARD_BAR."""
    if precision == "fp32":
        return FORWARD_BAR
    own = rel(description_tta_views(eval_model(state), x),
              description_tta_views(eval_model(state, torch.float64), x.double()))
    print(f"bf16 forward: float32 torch's views deviate {own:.1e} from float64 ones")
    return NOISE_FACTOR * own + FORWARD_BAR


def check_evaluation(holdout, metrics_final, model, x, labels, bar):
    """dptrain's views and its own evaluation against the description's on dptrain's weights,
    each to `bar` (forward_bar)."""
    views, torch_views = holdout["views"][()], description_tta_views(model, x)
    weights = np.asarray(holdout.attrs["weights"], np.float64)
    if len(views) != len(TTA_VIEWS):
        return [f"the run evaluates {len(views)} views, TTA level 2 has {len(TTA_VIEWS)}"]
    failures = []
    if not np.array_equal(weights / weights.sum(), [w for _, _, w in TTA_VIEWS]):
        failures.append(f"TTA weights {weights.tolist()}, the description's 2:2:1:1:1:1")
    dev = [rel(views[v], torch_views[v]) for v in range(len(TTA_VIEWS))]
    ours = np.tensordot(weights / weights.sum(), views, 1)
    reference = tta2(model, x)
    mean_dev = rel(ours, reference)
    logp = torch.log_softmax(torch.from_numpy(reference).double(), 1)
    loss = float(-logp[np.arange(len(labels)), labels].mean())
    accuracy = float((reference.argmax(1) == labels).mean())
    top2 = np.sort(reference, 1)[:, -2:]
    near_ties = int((top2[:, 1] - top2[:, 0] < 1e-5 * np.abs(reference).max()).sum())
    loss_dev = abs(metrics_final.attrs["loss"] - loss) / loss
    acc_diff = abs(metrics_final.attrs["accuracy"] - accuracy) * len(labels)
    print(f"TTA-2 on dptrain's final weights: views deviate up to {max(dev):.1e}, their mean "
          f"{mean_dev:.1e}; the run's evaluation: loss {metrics_final.attrs['loss']:.4f} "
          f"(torch {loss:.4f}, {loss_dev:.1e}), accuracy {metrics_final.attrs['accuracy']:.4f} "
          f"(torch {accuracy:.4f})")
    if max(dev) > bar or mean_dev > bar:
        failures.append(f"TTA views deviate {max(dev):.1e}, mean {mean_dev:.1e} > {bar:.1e}")
    if loss_dev > bar:
        failures.append(f"the run's TTA-2 loss deviates {loss_dev:.1e} > {bar:.1e}")
    if round(acc_diff) > near_ties:
        failures.append(f"the run's TTA-2 accuracy differs by {round(acc_diff)} images")
    return failures


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--oracle", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--train", type=int, default=101)
    p.add_argument("--holdout", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=float, default=3.3)
    p.add_argument("--bias-epochs", type=int, default=2)
    p.add_argument("--variant", choices=("94", "95"), default="94",
                   help="airbench94's recipe or airbench95's")
    p.add_argument("--lookahead-start-epoch", type=int, default=1,
                   help="airbench95's Lookahead start in the shrunk run (its recipe's is 3)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="dptrain's --precision; bf16 replays its bf16 convolutions and "
                   "activations (computed_as) and skips where dptrain finds no bf16 arithmetic "
                   "on the CPU")
    return p.parse_args()


def run_dptrain(args):
    """oracle_trajectory on the recipe's config file with this test's changes; returns the
    (train, held-out) splits and trajectory.h5's path."""
    os.makedirs(args.workdir, exist_ok=True)
    config = os.path.join(args.workdir, "recipe.cfg")
    overrides = {("epochs", ""): args.epochs, ("batch-size", ""): args.batch_size,
                 ("freeze", "whiten.bias:"): f"whiten.bias:{args.bias_epochs}"}
    if recipe.VARIANTS[args.variant].lookahead_start_epoch:
        overrides[("lookahead-start-epoch", "")] = args.lookahead_start_epoch
    recipe_config(CONFIGS[args.variant], config, overrides)
    splits = fashion_split(args.train, args.holdout, 32)
    os.environ["DPTRAIN_CPU_CONV"] = "direct"  # see the module's docstring
    options = ["--config", config]
    if args.precision == "bf16":
        options += ["--precision", "bf16"]  # oracle_trajectory runs on the CPU
    traj_path = run_oracle(args.oracle, args.workdir, *splits, options)
    return splits, traj_path


def compare(traj, metrics, splits, args):
    (images, labels), (holdout, holdout_labels) = splits
    norm = (traj.attrs["mean"], traj.attrs["std"])
    ours = {"loss": metrics["steps/loss"][()],
            "final": {k: traj["final"][k][()] for k in traj["final"]}}
    initial = {k: traj["initial"][k][()] for k in traj["initial"]}
    ref = replay(traj["plan"], initial_state(traj), images, labels, norm, args, torch.float64)
    ref["lr"] = np.array(ref["lr"])
    failures = check_run_shape(ref, len(images), args)
    if len(ours["loss"]) != ref["total"]:
        failures.append(f"{len(ours['loss'])} dptrain steps, the description's T = {ref['total']}")
    if failures:
        return failures
    twins = [replay(traj["plan"], initial_state(traj), images, labels, norm, args, torch.float32,
                    channels_last) for channels_last in (False, True)]
    failures += check_whitening(initial["whiten.weight"], images, norm)
    failures += check_plan(traj["plan"], ref, args.batch_size)
    failures += check_groups(traj["groups"], ref)
    failures += check_frozen_tensors(initial, ours["final"], ref["final"])
    n = len(holdout)
    x = augment(holdout, np.zeros((n, 2), np.int64), np.zeros(n, np.uint8), 0, *norm)
    failures += check_evaluation(traj["holdout"], metrics["final"], eval_model(ours["final"]), x,
                                 holdout_labels.astype(np.int64),
                                 forward_bar(args.precision, ours["final"], x))
    weights = np.asarray(traj["holdout"].attrs["weights"], np.float64)
    ours["tta"] = np.tensordot(weights / weights.sum(), traj["holdout/views"][()], 1)
    for r in [ref] + twins:  # each final model evaluated in float32
        r["loss"], r["tta"] = np.array(r["loss"]), tta2(eval_model(r["final"]), x)
    return failures + check_trajectory(ours, ref, twins)


def main():
    args = parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    try:
        splits, traj_path = run_dptrain(args)
    except subprocess.CalledProcessError as e:
        if args.precision == "bf16" and "neither AVX512-BF16 nor AMX" in (e.stderr or ""):
            print("SKIPPED: this CPU has no bf16 arithmetic: no --precision bf16 here")
            return SKIPPED
        raise
    with h5py.File(traj_path) as traj, \
            h5py.File(os.path.join(args.workdir, "run", "metrics.h5")) as metrics, \
            computed_as(args.precision):
        failures = compare(traj, metrics, splits, args)
    for f in failures:
        print("FAIL", f)
    print("FAILED" if failures else "PASSED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
