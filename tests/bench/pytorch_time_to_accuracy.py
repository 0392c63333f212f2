"""PyTorch's side of the time-to-accuracy comparison (README, Performance): trains on a dataset
packed by `dptrain pack` with the recipe of a dptrain job config: the same model as dptrain's
(torch_models.py: architecture, shortcut choice and initial distributions), random
crop with zero padding + horizontal flip + normalisation with the packed mean/std, SGD with
momentum and weight decay, step LR; evaluates on the test split after every epoch and prints
one line per epoch (time so far, train loss/accuracy, test accuracy) and a final JSON line.

The whole split is held in memory and each batch is augmented with vectorised tensor ops in
the training process: no DataLoader workers, so PyTorch gets the same cores dptrain gets.
Run with Debian's /usr/bin/python3 (PyTorch 1.13, CPU).

usage: pytorch_time_to_accuracy.py --data cifar10.h5 [--arch resnet50] [--epochs 10] ..."""
import argparse
import json
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

import peer_allocator
from torch_models import make_model


def load_split(path, split):
    with h5py.File(path, "r") as f:
        images = torch.from_numpy(f[f"{split}/images"][:]).permute(0, 3, 1, 2).contiguous()
        labels = torch.from_numpy(f[f"{split}/labels"][:].astype(np.int64))
        mean = torch.tensor(f.attrs["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(f.attrs["std"], dtype=torch.float32).view(1, -1, 1, 1)
        classes = int(f.attrs["num_classes"])
    return images, labels, mean, std, classes


def augment(batch, padding, generator):
    """Random crop with zero padding and random horizontal flip of a uint8 NCHW batch."""
    n, _, h, w = batch.shape
    padded = F.pad(batch, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w)
    out = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(batch.shape[1]).view(1, -1, 1, 1),
                 rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def normalise(batch, mean, std):
    return ((batch.float() / 255.0 - mean) / std).contiguous(memory_format=torch.channels_last)


def evaluate(model, images, labels, mean, std, batch_size):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = normalise(images[start:start + batch_size], mean, std)
            y = labels[start:start + batch_size]
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return loss / len(images), correct / len(images)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--lr-milestones", default="5,8")
    p.add_argument("--lr-gamma", type=float, default=0.1)
    p.add_argument("--crop-padding", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shortcut", choices=["A", "B", "auto"], default="auto",
                   help="as dptrain's --shortcut (auto: A for resnet8-56, else B)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    generator = torch.Generator().manual_seed(a.seed)

    train_x, train_y, mean, std, classes = load_split(a.data, "train")
    test_x, test_y, _, _, _ = load_split(a.data, "test")
    model = make_model(a.arch, classes, train_x.shape[1], shortcut=a.shortcut)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum,
                                weight_decay=a.weight_decay)
    milestones = [int(m) for m in a.lr_milestones.split(",")]
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, a.lr_gamma)

    print(f"pytorch {torch.__version__}: {a.arch} on {a.data}, batch {a.batch_size}, "
          f"{a.threads} threads, channels_last, {peer_allocator.preloaded()}", flush=True)
    started = time.perf_counter()
    history = []
    for epoch in range(1, a.epochs + 1):
        order = torch.randperm(len(train_x), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), a.batch_size):
            index = order[start:start + a.batch_size]
            x = normalise(augment(train_x[index], a.crop_padding, generator), mean, std)
            y = train_y[index]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(index)
            correct += (logits.argmax(1) == y).sum().item()
        schedule.step()
        val_loss, val_acc = evaluate(model, test_x, test_y, mean, std, 256)
        row = {"epoch": epoch, "elapsed_s": time.perf_counter() - started,
               "train_loss": loss_sum / len(order), "train_acc": correct / len(order),
               "val_loss": val_loss, "val_acc": val_acc}
        history.append(row)
        print(f"epoch {epoch}/{a.epochs}: {row['elapsed_s']:.0f} s, train loss "
              f"{row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%, test acc "
              f"{100 * val_acc:.2f}%", flush=True)
    print(json.dumps({"arch": a.arch, "epochs": a.epochs, "total_s": history[-1]["elapsed_s"],
                      "final_val_acc": history[-1]["val_acc"], "history": history}))


if __name__ == "__main__":
    peer_allocator.use_tcmalloc()
    main()
