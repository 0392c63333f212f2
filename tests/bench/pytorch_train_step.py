"""PyTorch's side of the dptrain-vs-PyTorch benchmark: times full training steps (forward,
cross-entropy, backward, SGD momentum update) of the same models on random data, with the same
thread count, and prints one line per configuration in the format `dptrain bench` uses.
Run with Debian's /usr/bin/python3 (PyTorch 1.13, CPU)."""
import argparse
import time

import torch
import torch.nn as nn
import torchvision


def basic_block_cifar(inp, out, stride):
    return torchvision.models.resnet.BasicBlock(
        inp, out, stride,
        downsample=None if stride == 1 and inp == out else nn.Sequential(
            nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out)))


def cifar_resnet(depth, classes, channels):
    """He et al. CIFAR ResNet (6n+2) with 1x1 projection shortcuts, as dptrain's resnet20."""
    n = (depth - 2) // 6
    layers = [nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
    inp = 16
    for stage, width in enumerate((16, 32, 64)):
        for i in range(n):
            layers.append(basic_block_cifar(inp, width, 2 if stage > 0 and i == 0 else 1))
            inp = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def make_model(arch, classes, channels):
    if arch.startswith("resnet") and arch[6:].isdigit() and int(arch[6:]) in (8, 20, 32, 44, 56):
        return cifar_resnet(int(arch[6:]), classes, channels)
    base = arch.replace("_cifar", "")
    model = getattr(torchvision.models, base)(num_classes=classes)
    if arch.endswith("_cifar"):
        model.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = make_model(a.arch, 10, 3)
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
          f"median_step_ms={1e3 * median:.1f} torch={torch.__version__}")


if __name__ == "__main__":
    main()
