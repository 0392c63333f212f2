"""Smoke test of the airbench94 PyTorch peer (tests/bench/pytorch_airbench94.py) on a tiny
packed dataset of smooth random 32x32 RGB images: the whitening filters whiten the patches,
the LR schedule and Lookahead decays take the recipe's values and reach the optimiser, frozen
tensors stay put, the whitening bias freezes after epoch 3, the final weights are the
Lookahead average, alternating flip + translate produce what they should, TTA level 2 runs 6
forward passes and equals its definition, airbench95's variant has jobs/cifar10_95_fast.cfg's
settings and its Lookahead starts late and averages at every epoch's end, `--half` keeps batch
norm in float32, and the command line writes its JSON and refuses bad input in one line.
Batch 32 and 5 steps per epoch keep it to seconds on 2 cores.

usage: test_airbench94_peer.py WORKDIR"""
import ctypes.util
import json
import math
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pytorch_airbench94 as peer  # noqa: E402

CONFIG_95 = os.path.join(HERE, "..", "..", "jobs", "cifar10_95_fast.cfg")
BATCH, STEPS_PER_EPOCH, TEST = 32, 5, 40
SMALL = (16, 32, 32)  # narrower groups for the in-process checks: seconds, not minutes
TRAIN = BATCH * STEPS_PER_EPOCH + 7  # the last partial batch (7) is dropped


def write_dataset(path):
    """Smooth images (8x8 noise upsampled 4x plus pixel noise), so neighbouring pixels
    correlate and the patch covariance has a spread spectrum. mean/std: the train split's."""
    rng = np.random.default_rng(1)
    data = {}
    for split, count in (("train", TRAIN), ("test", TEST)):
        base = rng.integers(0, 256, (count, 8, 8, 3)).repeat(4, 1).repeat(4, 2)
        data[split] = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    scaled = data["train"] / 255.0
    mean, std = scaled.mean((0, 1, 2)), scaled.std((0, 1, 2))
    with h5py.File(path, "w") as f:
        f.attrs["format"] = np.bytes_("dptrain-dataset")  # fixed-length, as `dptrain pack`
        f.attrs["format_version"] = 1
        f.attrs["name"] = "tiny32"
        f.attrs["num_classes"] = 10
        f.attrs["height"], f.attrs["width"], f.attrs["channels"] = 32, 32, 3
        f.attrs["mean"], f.attrs["std"] = mean, std
        f.create_dataset("class_names", data=[f"c{i}".encode() for i in range(10)],
                         dtype=h5py.string_dtype())
        for split, images in data.items():
            g = f.create_group(split)
            g.attrs["count"] = len(images)
            g.attrs["mean"], g.attrs["std"] = mean, std
            g.create_dataset("images", data=images)
            g.create_dataset("labels", data=rng.integers(0, 10, len(images)).astype(np.uint8))


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def check_macs(net):
    """Multiply-adds of one 32x32 forward, counted by hooks on the convs and the head:
    the recipe's 118.1 M, with maps 31 -> 15 -> 7 -> 3 -> 1."""
    macs, maps = [], []

    def hook(m, inputs, out):
        k = m.weight[0].numel()  # C_in x kH x kW, or in_features
        macs.append(out.numel() * k)
        maps.append(out.shape[-1])
    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        net.eval()
        logits = net(torch.zeros(1, 3, 32, 32))
        net.train()
    for h in handles:
        h.remove()
    check(logits.shape == (1, 10) and maps == [31, 31, 15, 15, 7, 7, 3, 10],
          f"conv output maps 31, 31, 15, 15, 7, 7, 3, then 10 logits ({maps})")
    check(abs(sum(macs) / 1e6 - 118.1) < 0.05, f"{sum(macs) / 1e6:.2f} M multiply-adds")


def check_whitening(train_x, mean, std):
    x = peer.normalise(train_x, mean, std)
    patches = peer.patches_2x2(x)
    check(patches.shape == (len(train_x) * 31 * 31, 12), "2x2 patches: N*31*31 rows of 12")
    # a patch row is the (c, ky, kx) window the conv weight sees
    check(torch.equal(patches[1], x[0, :, 0:2, 1:3].reshape(12)), "patch order (c, ky, kx)")
    lam, w = peer.whitening_filters(patches)
    p = patches.double()
    sigma = (p.T @ p / len(p)).numpy()
    check(np.allclose(lam.numpy(), np.linalg.eigvalsh(sigma)[::-1], rtol=1e-10),
          "eigenvalues: numpy's eigvalsh of X^T X / n, descending")
    check(bool((lam[:-1] > lam[1:]).all()) and lam[-1] / lam[0] < 0.1, "spread, descending")
    z = p @ w.reshape(12, 12).T
    cov = z.T @ z / len(z)
    want = torch.diag(lam / (lam + peer.WHITEN_EPS))
    err = float((cov - want).abs().max())
    check(err < 1e-9, f"cov of whitened patches = diag(lambda/(lambda+5e-4)) (err {err:.1e})")
    net = peer.Airbench94Net()  # the recipe's widths: checks the full network builds
    check(sum(p.numel() for p in net.parameters()) == 1971640 + 1152,
          "1,971,640 parameters plus the 1,152 fixed BN scales")
    check_macs(net)
    net.reset()
    peer.init_whitening(net, train_x, mean, std)
    check(torch.allclose(net.whiten.weight, torch.cat([w, -w]).float()), "weight = [+W; -W]")
    check(not net.whiten.bias.any(), "the whitening bias starts at zero, as dptrain's")
    return net.whiten.weight.detach().clone()


def check_schedules():
    T = peer.total_steps(48, 9.9)
    check(T == 476, f"T = ceil(48 x 9.9) = 476 (got {T})")
    warm = int(0.23 * T)
    check(warm == 109, "warm-up floor(0.23 T) = 109")
    for step, want in ((0, 0.2), (warm, 1.0), (T, 0.07), (warm // 2, 0.2 + 0.8 * 54 / 109),
                       ((warm + T) // 2, 1.0 - 0.93 * ((warm + T) // 2 - warm) / (T - warm))):
        got = peer.lr_factor(step, T)
        check(abs(got - want) < 1e-12, f"lr factor at step {step} = {want:.6f} ({got:.6f})")
    for t, want in ((5, 0.95 ** 5 * (5 / 476) ** 3), (240, 0.7737809375 * (240 / 476) ** 3),
                    (475, 0.7737809375 * (475 / 476) ** 3)):
        got = peer.lookahead_decay(t, T)
        check(abs(got - want) < 1e-12, f"lookahead decay at t={t} = {want:.6e}")
    check(abs(peer.LR * peer.BN_LR_SCALE * (peer.DECAY / (peer.LR * peer.BN_LR_SCALE))
              - peer.DECAY) < 1e-15, "lr x wd = 1.9957e-3")


def check_lookahead_buffers():
    net = peer.Airbench94Net()
    net.reset()
    la = peer.Lookahead(net)
    bn = net.groups[0].norm1
    before = bn.running_var.clone()
    bn.running_var.fill_(3.0)
    la.update(0.25)
    check(torch.allclose(bn.running_var, 0.25 * before + 0.75 * 3.0),
          "Lookahead averages BN running statistics")


def check_half_precision():
    """--half (CUDA only, so its arithmetic never runs here): every tensor float16 but batch
    norm's parameters and running statistics."""
    net = peer.half_except_batchnorm(peer.Airbench94Net())
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    in_norms = {id(t) for m in norms for t in list(m.parameters()) + list(m.buffers())
                if t.is_floating_point()}
    tensors = [t for t in list(net.parameters()) + list(net.buffers()) if t.is_floating_point()]
    check(len(norms) == 6 and in_norms and
          all((t.dtype == torch.float32) == (id(t) in in_norms) for t in tensors) and
          all(t.dtype == torch.float16 for t in tensors if id(t) not in in_norms),
          "--half: float16 but batch norm, which stays float32")


def check_training(train_x, train_y, mean, std, whiten_weight):
    """27 steps = 5.4 epochs of 5 steps: the bias trains in epochs 0-2 (steps 1-15)."""
    epochs = 27 / STEPS_PER_EPOCH
    T = peer.total_steps(STEPS_PER_EPOCH, epochs)
    check(T == 27, "T = 27 for 5.4 epochs of 5 steps")
    net = peer.Airbench94Net(SMALL)
    seen = {}
    frozen = None

    def observer(t, n, opt, decay):
        nonlocal frozen
        bn_scales = [m.weight for m in n.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if frozen is None:
            frozen = [p.detach().clone() for p in [n.whiten.weight] + bn_scales]
        for p, p0 in zip([n.whiten.weight] + bn_scales, frozen):
            if not torch.equal(p, p0):
                raise SystemExit(f"FAIL: a frozen tensor changed at step {t}")
        f = peer.lr_factor(t - 1, T)
        bn_group, others = opt.param_groups
        if not (abs(others["lr"] - peer.LR * f) < 1e-15 and
                abs(bn_group["lr"] - 64 * peer.LR * f) < 1e-15 and
                abs(others["lr"] * others["weight_decay"] - peer.DECAY * f) < 1e-15 and
                abs(bn_group["lr"] * bn_group["weight_decay"] - peer.DECAY * f) < 1e-15):
            raise SystemExit(f"FAIL: group lr / decay at step {t}")
        want = peer.lookahead_decay(t, T) if t % 5 == 0 else None
        if decay != want:
            raise SystemExit(f"FAIL: lookahead at step {t}: {decay} != {want}")
        seen[t] = {k: v.detach().clone() for k, v in n.state_dict().items()}

    peer.train_run(net, net, (train_x, train_y, mean, std), 3, epochs, BATCH, None,
                   torch.device("cpu"), torch.float32, observer=observer, log=lambda s: None)
    check(sorted(seen) == list(range(1, 28)), "27 steps, schedules checked at each")
    check(torch.equal(net.whiten.weight, whiten_weight), "whitening weight frozen all run")
    bias = "whiten.bias"
    check(not torch.equal(seen[1][bias], seen[15][bias]), "whitening bias trains in epochs 0-2")
    check(all(torch.equal(seen[t][bias], seen[15][bias]) for t in range(16, 28)),
          "whitening bias frozen from epoch 3 on")
    conv = "groups.2.conv2.weight"
    check(not torch.equal(seen[25][conv], seen[27][conv]), "steps 26-27 move the weights")
    floats = {k: v for k, v in net.state_dict().items() if v.is_floating_point()}
    check(len(floats) == len(net.state_dict()) - 6 and
          all(torch.equal(v, seen[25][k]) for k, v in floats.items()),
          "final float state = the Lookahead average of step 25 (running stats included; "
          "the 6 BN step counters are integers, outside Lookahead)")


def check_airbench95_lookahead(train_x, train_y, mean, std):
    """airbench95's variant on 27 steps of 5 with its Lookahead start moved to epoch 2 (0-based):
    the average is taken after step 15 (the first multiple of 5 in epoch 2), nothing earlier;
    then every epoch's end and the run's end set the weights to it (d = 1) and steps 20 and 25
    update it with their decays; the others' lr is the variant's 10 per 1024 examples."""
    v95 = peer.VARIANTS["95"]
    config = dict(line.split("=", 1) for line in open(CONFIG_95).read().splitlines()
                  if "=" in line and not line.startswith("#"))
    config = {k.strip(): v.strip() for k, v in config.items()}
    lr, decay = float(config["lr"]), float(config["weight-decay"])
    check(v95.widths == (128, 384, 384) and v95.epochs == float(config["epochs"]) == 15 and
          v95.lookahead_start_epoch == int(config["lookahead-start-epoch"]) == 3 and
          v95.lookahead_each_epoch and config["lookahead-each-epoch"] == "true" and
          config["arch"] == "airbench95",
          "the airbench95 variant's settings are jobs/cifar10_95_fast.cfg's")
    check(abs(v95.lr / lr - 1) < 1e-6 and abs(peer.DECAY / v95.lr / decay - 1) < 1e-6,
          f"its lr {v95.lr:.8g} and weight decay {peer.DECAY / v95.lr:.8g} are the config's "
          f"({lr}, {decay})")
    variant = peer.Variant(SMALL, 27 / STEPS_PER_EPOCH, v95.lr, 2, True)
    T, at, events = 27, [0], []

    class Recording(peer.Lookahead):
        def __init__(self, net):
            events.append((at[0], "start"))
            super().__init__(net)

        def update(self, decay):
            events.append((at[0], decay))
            super().update(decay)

    def observer(t, n, opt, decay):
        others = opt.param_groups[1]
        if abs(others["lr"] - variant.lr * peer.lr_factor(t - 1, T)) > 1e-15:
            raise SystemExit(f"FAIL: airbench95 lr at step {t}")

    net, plain = peer.Airbench94Net(SMALL), peer.Lookahead
    # each training step runs one forward: at[0] is the step under way (1-based)
    net.register_forward_pre_hook(lambda module, inputs: at.__setitem__(0, at[0] + 1))
    peer.Lookahead = Recording
    try:
        peer.train_run(net, net, (train_x, train_y, mean, std), 3, variant.epochs, BATCH, None,
                       torch.device("cpu"), torch.float32, observer=observer,
                       log=lambda s: None, variant=variant)
    finally:
        peer.Lookahead = plain
    d = peer.lookahead_decay
    want = [(15, "start"), (15, 1.0), (20, d(20, T)), (20, 1.0), (25, d(25, T)), (25, 1.0),
            (27, 1.0)]
    check(events == want, f"airbench95 Lookahead events {events}")


def check_rerun(train_x, train_y, mean, std):
    """--runs re-initialises one module in place: a run after another (one that went past
    the whitening bias's freeze at step 15, stopped at 17) equals a fresh one. A run stopped
    before T keeps its last step's weights."""
    data = (train_x, train_y, mean, std)
    args = (6.0, BATCH, 6, torch.device("cpu"), torch.float32)
    reused, fresh = peer.Airbench94Net(SMALL), peer.Airbench94Net(SMALL)
    after_17 = {}

    def observer(t, net, opt, decay):
        if t == 17:
            after_17.update({k: v.clone() for k, v in net.state_dict().items()})

    peer.train_run(reused, reused, data, 4, 6.0, BATCH, 17, torch.device("cpu"), torch.float32,
                   observer=observer, log=lambda s: None)
    check(not reused.whiten.bias.requires_grad, "17 steps: the whitening bias froze")
    check(all(torch.equal(v, after_17[k]) for k, v in reused.state_dict().items()),
          "stopped at step 17 of 30 (--max-steps): the weights stay as step 17 left them, not "
          "set to the Lookahead average (as dptrain's --stop-after-steps)")
    peer.train_run(reused, reused, data, 3, *args, log=lambda s: None)
    peer.train_run(fresh, fresh, data, 3, *args, log=lambda s: None)
    a, b = reused.state_dict(), fresh.state_dict()
    check(all(torch.equal(a[k], b[k]) for k in b),
          "a run after another = a fresh run, bit for bit")


def check_loader(train_x, train_y, mean, std):
    loader = peer.AlternatingFlipLoader(train_x, train_y, mean, std, BATCH, 7, "cpu",
                                        torch.float32)
    base = peer.normalise(train_x, mean, std)
    padded = torch.nn.functional.pad(base, (2,) * 4, mode="reflect")
    for epoch in (0, 1):
        seen = []
        for x, y in loader.epoch(epoch):
            idx = loader.last_index
            if not torch.equal(y, train_y[idx]):
                raise SystemExit(f"FAIL: epoch {epoch}: labels do not follow the images")
            for j in range(4):
                i = int(idx[j])
                flipped = bool(loader.flip_bit[i]) ^ (epoch % 2 == 1)
                src = padded[i].flip(2) if flipped else padded[i]
                hits = [(dy, dx) for dy in range(5) for dx in range(5)
                        if torch.equal(x[j], src[:, dy:dy + 32, dx:dx + 32])]
                if not hits:
                    raise SystemExit(f"FAIL: epoch {epoch} image {i}: not a 32x32 crop of the "
                                     f"reflect-padded image flipped={flipped}")
            seen.extend(idx.tolist())
        check(len(seen) == BATCH * STEPS_PER_EPOCH and len(set(seen)) == len(seen),
              f"epoch {epoch}: {STEPS_PER_EPOCH} full batches of distinct images; crops of "
              f"the image flipped iff (its bit XOR odd epoch)")


def check_tta(test_x, test_y, mean, std):
    torch.manual_seed(0)
    net = peer.Airbench94Net(SMALL)
    net.reset()
    net.eval()
    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return net(x)

    for level, passes in ((0, 1), (1, 2), (2, 6)):
        calls.clear()
        acc = peer.evaluate(counting, net, test_x, test_y, mean, std, level, "cpu",
                            torch.float32)
        check(len(calls) == passes and sorted(acc) == [f"tta{i}" for i in range(level + 1)],
              f"TTA level {level}: {passes} forward pass(es) of the batch")
    x = peer.normalise(test_x, mean, std)
    with torch.no_grad():
        got = peer.tta_logits(net, x, 2)[2]
        xn = x.numpy()
        pad = torch.from_numpy(np.pad(xn, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect"))
        views = [x, pad[:, :, :32, :32], pad[:, :, 2:, 2:]]
        each = [0.5 * (net(v) + net(v.flip(3))) for v in views]
        want = 0.5 * each[0] + 0.25 * (each[1] + each[2])
    check(torch.allclose(got, want, atol=1e-6), "TTA level 2 = mirror + diagonal shifts")


def check_cli(workdir, data):
    out = os.path.join(workdir, "run.json")
    cmd = [sys.executable, os.path.join(HERE, "pytorch_airbench94.py"), "--data", data,
           "--batch-size", str(BATCH), "--max-steps", "2", "--threads", "2", "--runs", "2",
           "--seed", "5", "--json", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"CLI run exits 0 ({r.stderr.strip()[-300:]})")
    res = json.load(open(out))
    check([r["seed"] for r in res["runs"]] == [5, 6], "--runs 2 --seed 5: runs of seeds 5, 6")
    run = res["runs"][1]
    check(run["steps"] == 2 and run["total_steps"] == math.ceil(STEPS_PER_EPOCH * 9.9) and
          sorted(run["accuracy"]) == ["tta0", "tta1", "tta2"] and run["train_s"] > 0 and
          run["eval_s"] > 0 and res["torch"] == torch.__version__ and res["device"] == "cpu",
          "CLI JSON: steps, accuracies at TTA 0/1/2, times, torch version, device")
    allocator = "tcmalloc" if ctypes.util.find_library("tcmalloc_minimal") else "glibc malloc"
    check(res["allocator"] == allocator and allocator in r.stdout.splitlines()[0],
          f"the CLI runs on {allocator} (peer_allocator.py) and says so")
    bad = [(["--data", os.path.join(workdir, "missing.h5")], "--data"),
           (["--data", data, "--epochs", "0"], "--epochs")]
    if not hasattr(torch, "compile"):
        bad.append((["--data", data, "--compile"], "--compile"))
    for args, name in bad:
        r = subprocess.run(cmd[:2] + args, capture_output=True, text=True, timeout=60)
        lines = r.stderr.strip().splitlines()
        check(r.returncode != 0 and len(lines) == 1 and name in lines[0],
              f"bad {name}: one line, non-zero exit ({lines[-1] if lines else ''})")


def main():
    workdir = sys.argv[1]
    os.makedirs(workdir, exist_ok=True)
    torch.set_num_threads(2)
    data = os.path.join(workdir, "tiny32.h5")
    write_dataset(data)
    train_x, train_y, test_x, test_y, mean, std = peer.load_packed(data)
    whiten_weight = check_whitening(train_x, mean, std)
    check_schedules()
    check_lookahead_buffers()
    check_half_precision()
    check_loader(train_x, train_y, mean, std)
    check_training(train_x, train_y, mean, std, whiten_weight)
    check_airbench95_lookahead(train_x, train_y, mean, std)
    check_rerun(train_x, train_y, mean, std)
    check_tta(test_x, test_y, mean, std)
    check_cli(workdir, data)
    print("all airbench94 peer checks passed")


if __name__ == "__main__":
    main()
