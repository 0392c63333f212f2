"""A multi-step, multi-rank PyTorch oracle: a whole `dptrain train` run on 2 MPI ranks
against torch.nn.parallel.DistributedDataParallel on 2 processes (gloo, CPU) replaying it from
the same initial weights, each rank's samples and augmentation draws: resnet8 (BatchNorm), 128
steps of global batch 64 (32 a rank), momentum, weight decay, label smoothing, random crop +
flip, a learning rate that drops mid-run. Under test is what DDP's semantics mean with batch
norm, over many steps: each rank normalises with its own half batch's statistics, the gradients
are averaged over the ranks, and the checkpoint (rank 0's model, its running statistics those
of rank 0's batches) is DDP's rank 0. (That rank 0's buffers then reach every rank, DDP's
broadcast_buffers, leaves rank 0's own unchanged, so it is not seen here; test_dptrain_mpi.py
holds every rank's buffers equal after each step.)

The bars are torch_trajectory.py's (compare()): every step's learning rate; step 1's loss to
1e-5 and steps 1-5 to 1e-3 (the loss is the global batch's mean: DDP's two ranks' losses
averaged); the whole trajectory (step losses, rank 0's final parameters and BN statistics,
held-out predictions) within 4x of DDP's own deviation from a replay whose weights are
perturbed by 1e-6. A control shows the test can see the per-rank batch norm: a single-process
replay of the same global batches (BN over all 64 samples, as one rank of batch 64 would
train) must fail the bars.

dptrain's sampler is DistributedSampler's layout over a per-epoch permutation that does not
depend on the world size, and an augmentation draw is a function of (seed, epoch, sample): the
one-rank oracle run (oracle_trajectory, also giving the initial weights) lays out each epoch's
permutation and every sample's draw, and rank r of 2 takes the permutation's samples r, r+2, ...

Skipped (exit 77) only where this PyTorch lacks torch.distributed with gloo.

usage: torch_ddp_trajectory.py --oracle BIN --dptrain BIN --mpiexec MPIEXEC --workdir DIR"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
import torch_trajectory as tt  # noqa: E402
from tiny_dataset import mpirun_command  # noqa: E402

RANKS = 2


def rank_plan(plan, batch, ranks=RANKS):
    """Each rank's samples, crops and flips for every step {S, ranks, batch / ranks}, from the
    one-rank plan: an epoch's steps, concatenated, are its whole permutation (the batch divides
    the training set), of which rank r takes positions r, r + ranks, ..."""
    indices, epochs = plan["indices"][()], plan["epoch"][()]
    crops, flips = plan["crop"][()], plan["flip"][()]
    draw = {}
    for s in range(len(indices)):
        for k, i in enumerate(indices[s]):
            draw[(int(epochs[s]), int(i))] = (crops[s, k], flips[s, k])
    per_rank = batch // ranks
    out_idx, out_crop, out_flip = [], [], []
    for epoch in np.unique(epochs):
        steps = np.flatnonzero(epochs == epoch)
        perm = indices[steps].reshape(-1)
        orders = [perm[r::ranks] for r in range(ranks)]
        for s in range(len(steps)):
            idx = np.stack([o[s * per_rank:(s + 1) * per_rank] for o in orders])
            drawn = [[draw[(int(epoch), int(i))] for i in row] for row in idx]
            out_idx.append(idx)
            out_crop.append(np.array([[crop for crop, _ in row] for row in drawn]))
            out_flip.append(np.array([[flip for _, flip in row] for row in drawn]))
    return np.stack(out_idx), np.stack(out_crop), np.stack(out_flip)


def ddp_worker(rank, args, job):
    """One DDP process: replays every step on this rank's samples; rank 0 saves the global
    losses, learning rates and its final state into job["out"]."""
    torch.set_num_threads(1)
    # PyTorch notes that some gradients' strides differ from its buckets' views: a copy, not an
    # error, and not the arithmetic under test.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    dist.init_process_group("gloo", init_method=f"file://{job['rendezvous']}", rank=rank,
                            world_size=RANKS)
    data = np.load(job["inputs"])
    model = tt.torch_model(args.arch, int(data["channels"]))
    state = {k[len("state/"):]: torch.from_numpy(data[k]) for k in data.files
             if k.startswith("state/")}
    model.load_state_dict(state, strict=True)
    ddp = nn.parallel.DistributedDataParallel(model)  # broadcast_buffers=True
    opt, sched = tt.make_optimizer(args, ddp)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    images, labels = data["images"], data["labels"]
    losses, lrs = [], []
    ddp.train()
    for s in range(data["indices"].shape[0]):
        idx = data["indices"][s, rank]
        x = tt.augment(images[idx], data["crops"][s, rank], data["flips"][s, rank],
                       args.crop_padding, data["mean"], data["std"])
        y = torch.from_numpy(labels[idx].astype(np.int64))
        lr, loss = tt.sgd_step(ddp, opt, sched, loss_fn, x, y)
        lrs.append(lr)
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / RANKS)
    if rank == 0:
        run = tt.trained_run(model, losses, lrs, torch.from_numpy(data["x_holdout"]))
        np.savez(job["out"], loss=run["loss"], lr=run["lr"], holdout=run["holdout"],
                 **{"final/" + k: v for k, v in run["final"].items()})
    dist.destroy_process_group()


def run_ddp(args, workdir, name, state, inputs):
    """The DDP replay from `state` on 2 processes: the run's dict as compare() reads it."""
    np.savez(os.path.join(workdir, f"{name}_inputs.npz"),
             **inputs, **{"state/" + k: v.numpy() for k, v in state.items()})
    job = {"inputs": os.path.join(workdir, f"{name}_inputs.npz"),
           "out": os.path.join(workdir, f"{name}_out.npz"),
           "rendezvous": tempfile.mktemp(dir=workdir, prefix="gloo-")}
    mp.spawn(ddp_worker, args=(args, job), nprocs=RANKS, join=True)
    out = np.load(job["out"])
    return {"loss": out["loss"], "lr": out["lr"], "holdout": out["holdout"],
            "final": {k[len("final/"):]: out[k] for k in out.files if k.startswith("final/")}}


def run_single(args, state, inputs):
    """The control: one process, each step's two halves as one batch of 64 (BN over all)."""
    model = tt.torch_model(args.arch, int(inputs["channels"]))
    model.load_state_dict(state, strict=True)
    opt, sched = tt.make_optimizer(args, model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    losses, lrs = [], []
    model.train()
    for s in range(inputs["indices"].shape[0]):
        idx = inputs["indices"][s].reshape(-1)
        x = tt.augment(inputs["images"][idx], inputs["crops"][s].reshape(-1, 2),
                       inputs["flips"][s].reshape(-1), args.crop_padding, inputs["mean"],
                       inputs["std"])
        y = torch.from_numpy(inputs["labels"][idx].astype(np.int64))
        lr, loss = tt.sgd_step(model, opt, sched, loss_fn, x, y)
        lrs.append(lr)
        losses.append(loss.item())
    return tt.trained_run(model, losses, lrs, torch.from_numpy(inputs["x_holdout"]))


def dptrain_two_ranks(args, workdir, x_holdout, channels):
    """`dptrain train` on 2 ranks with the oracle run's options and packed data: its steps'
    losses and learning rates, its checkpoint's state (rank 0's) and that model's held-out
    logits (computed in torch from the checkpoint's weights)."""
    command = [args.dptrain, "train"] + [str(a) for a in tt.resnet_args(args)] + [
        "--data", os.path.join(workdir, "data.h5"), "--output-dir", workdir, "--run-name",
        "ddp", "--overwrite", "true", "--device", "cpu", "--threads", "1", "--log-every", "1000"]
    proc = subprocess.run(mpirun_command(args.mpiexec, RANKS, command), capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        sys.exit(f"FAIL dptrain on {RANKS} ranks exits {proc.returncode}: {proc.stderr[-800:]}")
    run = os.path.join(workdir, "ddp")
    with h5py.File(os.path.join(run, "metrics.h5")) as m, \
            h5py.File(os.path.join(run, "checkpoint.h5")) as c:
        ours = {"loss": m["steps/loss"][()], "lr": m["steps/lr"][()],
                "final": {k: c[g][k][()] for g in ("params", "buffers") for k in c[g]}}
    model = tt.torch_model(args.arch, channels)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours["final"].items()},
                          strict=True)
    ours["holdout"] = tt.eval_logits(model, torch.from_numpy(x_holdout))
    return ours


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--oracle", required=True)
    p.add_argument("--dptrain", required=True)
    p.add_argument("--mpiexec", required=True)
    p.add_argument("--workdir", required=True)
    args = p.parse_args()
    if not (dist.is_available() and dist.is_gloo_available()):
        print("SKIPPED: this PyTorch has no torch.distributed with gloo")
        sys.exit(77)
    # torch_trajectory.py's resnet8 recipe, its weight decay high enough to be seen.
    args.arch, args.train, args.holdout, args.canvas, args.epochs = "resnet8", 2048, 256, 0, 4
    args.batch_size, args.lr, args.momentum, args.nesterov = 64, 0.01, 0.9, 0
    args.weight_decay, args.label_smoothing, args.crop_padding, args.flip = 5e-3, 0.1, 2, 1
    args.seed, args.gamma, args.milestones = 3, 0.2, [2.0]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(args.workdir, exist_ok=True)
    train_split, test_split = tt.fashion_split(args.train, args.holdout, args.canvas)
    traj_path = tt.run_oracle(args.oracle, args.workdir, train_split, test_split,
                              tt.resnet_args(args))
    (images, labels), (holdout, _) = train_split, test_split
    with h5py.File(traj_path) as traj:
        mean, std = traj.attrs["mean"], traj.attrs["std"]
        indices, crops, flips = rank_plan(traj["plan"], args.batch_size)
        n = len(holdout)
        x_holdout = tt.augment(holdout, np.zeros((n, 2), np.int64), np.zeros(n, np.uint8), 0,
                               mean, std).numpy()
        channels = traj["initial/conv1.weight"].shape[1]
        inputs = {"images": images, "labels": labels, "indices": indices, "crops": crops,
                  "flips": flips, "mean": mean, "std": std, "x_holdout": x_holdout,
                  "channels": channels}
        start, perturbed_start = tt.initial_state(traj), tt.initial_state(traj, tt.PERTURBATION)
    ours = dptrain_two_ranks(args, args.workdir, x_holdout, channels)
    reference = run_ddp(args, args.workdir, "reference", start, inputs)
    perturbed = run_ddp(args, args.workdir, "perturbed", perturbed_start, inputs)
    failures = tt.compare(args, ours, reference, perturbed, who=f"dptrain on {RANKS} ranks")
    failures += tt.control_must_fail(args, run_single(args, start, inputs), reference, perturbed,
                                     "one process, batch norm over the global batch",
                                     "per-rank batch norm unseen")
    tt.exit_with(failures)


if __name__ == "__main__":
    main()
