"""PyTorch's side of the GPU benchmark (bench_gpu_vs_pytorch.sh): times full training steps
(forward, cross-entropy, backward, SGD momentum update) of dptrain's model (torch_models.py:
architecture, shortcut choice and initial distributions as dptrain's) on one CUDA GPU,
on random data, in one of four modes: eager (NCHW FP32), channels_last (FP32), amp_bf16
(channels_last + autocast bfloat16) and compile (torch.compile of the channels_last AMP step).
Prints one line in the format `dptrain bench` uses. Needs a PyTorch built with CUDA."""
import argparse
import sys
import time

import torch
import torch.nn as nn

from torch_models import make_model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--shortcut", choices=["A", "B", "auto"], default="auto",
                   help="as dptrain's --shortcut (auto: A for resnet8-56, else B)")
    p.add_argument("--mode", choices=["eager", "channels_last", "amp_bf16", "compile"],
                   default="eager")
    a = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("pytorch_gpu_train_step.py: this PyTorch has no usable CUDA device")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    model = make_model(a.arch, 10, 3, shortcut=a.shortcut).to(dev)
    x = torch.randn(a.batch_size, 3, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 10, (a.batch_size,), device=dev)
    if a.mode != "eager":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    amp = a.mode in ("amp_bf16", "compile")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    if a.mode == "compile":
        if not hasattr(torch, "compile"):
            sys.exit("pytorch_gpu_train_step.py: torch.compile needs PyTorch 2")
        model = torch.compile(model)
    model.train()
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    print(f"pytorch arch={a.arch} batch={a.batch_size} image={a.image_size} mode={a.mode} "
          f"steps={a.steps} images_per_sec={a.batch_size * a.steps / elapsed:.1f} "
          f"step_ms={1e3 * elapsed / a.steps:.2f} torch={torch.__version__} "
          f"gpu={torch.cuda.get_device_name(0).replace(' ', '_')}")


if __name__ == "__main__":
    main()
