#!/usr/bin/python3
"""How far PyTorch's own bf16 autocast training step lands from float64, on the model and batch
of CudaBf16.ResNet50TrainingStepTracksFp32 (torchvision ResNet-50, 10 classes, last BN of every
bottleneck at gamma 0.2, 32 images of 32x32 in [-2, 2], labels i % 10, label smoothing 0.1,
SGD lr 0.1 momentum 0.9 wd 5e-4). That test's bars are set from these figures: dptrain's bf16
must stay as close to float32 as PyTorch's bf16 stays to float64. Not a test (Debian's PyTorch
has CPU autocast only); it prints one line of figures.

  /usr/bin/python3 tests/backend/bf16_reference_deviation.py

Printed on 2026-11-26 with Debian's PyTorch 1.13 (CPU), 2 threads (the last digit moves with the
thread count): gradients relative L2 0.382; per
tensor gradient cosine min 0.898, median 0.937; parameters after the step, max error relative
to the largest parameter 0.0243; running statistics relative L2 0.00105.
Printed again on 2026-12-02 (same setup, with the per-tensor gradient norm ratio bf16/float64
added): gradients relative L2 0.38; cosine min 0.885 median 0.935; norm ratio min 0.91 max 1.1;
parameters max relative 0.0239; running statistics relative L2 0.00102."""
import copy

import torch
import torchvision
from torchvision.models.resnet import Bottleneck


def step(model, images, labels, dtype, autocast):
    m = copy.deepcopy(model).to(dtype)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = m(images.to(dtype))
    loss = torch.nn.functional.cross_entropy(logits.float().to(dtype), labels,
                                             label_smoothing=0.1)
    loss.backward()
    grads = [p.grad.detach().double().clone() for p in m.parameters()]
    opt.step()
    params = torch.cat([p.detach().double().flatten() for p in m.parameters()])
    buffers = torch.cat([b.detach().double().flatten() for n, b in m.named_buffers()
                         if "num_batches" not in n])
    return grads, params, buffers


def main():
    torch.manual_seed(3)
    model = torchvision.models.resnet50(num_classes=10).train()
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, Bottleneck):
                block.bn3.weight.fill_(0.2)
    images = torch.rand(32, 3, 32, 32) * 4 - 2
    labels = torch.arange(32) % 10
    g64, p64, b64 = step(model, images, labels, torch.float64, False)
    gbf, pbf, bbf = step(model, images, labels, torch.float32, True)
    cosines = sorted(float((a * b).sum() / ((a * a).sum() * (b * b).sum()).sqrt())
                     for a, b in zip(gbf, g64))
    # A gradient scaled by a constant keeps its cosine: the norm ratio per tensor catches it.
    ratios = sorted(float(a.norm() / b.norm()) for a, b in zip(gbf, g64))
    all64, allbf = torch.cat([g.flatten() for g in g64]), torch.cat([g.flatten() for g in gbf])
    print("gradients relative L2 %.3g; cosine min %.3g median %.3g; norm ratio min %.3g max "
          "%.3g; parameters max relative %.3g; running statistics relative L2 %.3g" % (
              float((allbf - all64).norm() / all64.norm()), cosines[0],
              cosines[len(cosines) // 2], ratios[0], ratios[-1],
              float((pbf - p64).abs().max() / p64.abs().max()),
              float((bbf - b64).norm() / b64.norm())))


if __name__ == "__main__":
    main()
