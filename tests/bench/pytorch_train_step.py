"""PyTorch's side of the dptrain-vs-PyTorch benchmark: times full training steps (forward,
cross-entropy, backward, SGD momentum update) of the same models on random data, with the same
thread count, and prints one line per configuration in the format `dptrain bench` uses. The
models come from torch_models.py: dptrain's architectures (option-A shortcuts for resnet8-56,
as dptrain's default), initialised from dptrain's distributions.
Run with Debian's /usr/bin/python3 (PyTorch 1.13, CPU)."""
import argparse
import time

import torch
import torch.nn as nn

import peer_allocator
# dptrain's models in torch: the same architectures, shortcuts and initialisation.
from torch_models import make_model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--shortcut", choices=["A", "B", "auto"], default="auto",
                   help="as dptrain's --shortcut (auto: A for resnet8-56, else B)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = make_model(a.arch, 10, 3, shortcut=a.shortcut)
    x = torch.randn(a.batch_size, 3, a.image_size, a.image_size)
    y = torch.randint(0, 10, (a.batch_size,))
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    step_seconds = []  # for the median: robust to a shared machine's stalls
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            start = time.perf_counter()
        step_start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if i >= a.warmup:
            step_seconds.append(time.perf_counter() - step_start)
    elapsed = time.perf_counter() - start
    median = sorted(step_seconds)[a.steps // 2]  # the upper median for an even count, as dptrain
    layout = "channels_last" if a.channels_last else "nchw"
    print(f"pytorch arch={a.arch} batch={a.batch_size} image={a.image_size} layout={layout} "
          f"threads={a.threads} steps={a.steps} images_per_sec={a.batch_size * a.steps / elapsed:.1f} "
          f"step_ms={1e3 * elapsed / a.steps:.1f} median_images_per_sec={a.batch_size / median:.1f} "
          f"median_step_ms={1e3 * median:.1f} torch={torch.__version__} "
          f"allocator={peer_allocator.preloaded().split()[0]}")


if __name__ == "__main__":
    peer_allocator.use_tcmalloc()
    main()
