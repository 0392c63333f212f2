"""dptrain's model zoo in PyTorch, for everything that runs dptrain's models in torch: the one-
step oracle (tests/oracle/torch_oracle.py), the state_dict key list (tests/nn/make_state_keys.py)
and the PyTorch peers of the benchmarks (pytorch_*.py here). The same architectures under
torchvision's parameter names, the same shortcut choice (He et al.'s option A by default for
resnet8/20/32/44/56, option B, torchvision's projection, for the rest), and dptrain's
initialisation in distribution (lib/nn/init.cpp), so a comparison compares recipes, not models.

Import from a script in another folder with
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

# He et al. 2016, section 4.2: 6n+2 layers, n blocks in each of 3 stages of 16/32/64 channels.
CIFAR_BLOCKS = {"resnet8": 1, "resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9}


class SubsamplePad(nn.Module):
    """Option A: x[:, :, ::stride, ::stride] with `extra` zero channels after the input's
    (fb.resnet.torch's shortcutType 'A'; dptrain's Backend::subsample_pad_forward). No
    parameters, so the block's state_dict has no "downsample" keys."""

    def __init__(self, extra, stride):
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))


class CifarResNet(nn.Module):
    """He et al. 2016's CIFAR ResNet as dptrain builds it: 3x3 conv stem, torchvision's
    BasicBlock, option-A (default) or option-B shortcuts where the shape changes, global
    average pooling, linear classifier; torchvision's parameter names."""

    def __init__(self, blocks, num_classes=10, in_channels=3, width=16, shortcut="A"):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be A or B, not {shortcut!r}")
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inplanes = width
        for stage in range(3):
            layers = []
            planes = width << stage
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                down = None
                if stride != 1 or inplanes != planes:
                    down = (SubsamplePad(planes - inplanes, stride) if shortcut == "A" else
                            nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes)))
                layers.append(BasicBlock(inplanes, planes, stride, down))
                inplanes = planes
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def default_shortcut(arch):
    return "A" if arch in CIFAR_BLOCKS else "B"


def make_model(arch, num_classes=10, in_channels=3, shortcut="auto", zero_init_residual=False):
    """The zoo model `arch` (dptrain's names) with dptrain's initialisation; the caller seeds
    torch's generator (torch.manual_seed) for reproducible weights."""
    shortcut = default_shortcut(arch) if shortcut == "auto" else shortcut
    if arch in CIFAR_BLOCKS:
        model = CifarResNet(CIFAR_BLOCKS[arch], num_classes, in_channels, shortcut=shortcut)
    else:
        if shortcut != "B":
            raise ValueError(f"{arch} has torchvision's projection shortcuts (B) only")
        model = getattr(torchvision.models, arch.replace("_cifar", ""))(num_classes=num_classes)
        if arch.endswith("_cifar"):  # 3x3/1 stem, no max-pool
            model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            model.maxpool = nn.Identity()
        elif in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    init_like_dptrain(model, zero_init_residual)
    return model


@torch.no_grad()
def init_like_dptrain(model, zero_init_residual=False):
    """lib/nn/init.cpp's distributions: conv weights N(0, 2 / fan_out) with fan_out =
    out_channels * kh * kw (kaiming_normal_, mode fan_out, ReLU gain); BN weight 1, bias 0,
    running mean 0, running variance 1; linear weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (torch's own Linear default, set explicitly here so it cannot drift); with
    zero_init_residual the last BN weight of every residual block 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.weight.shape[1])
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.uniform_(m.bias, -bound, bound)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
