"""The ResNet behind DeepFreak, as a pure ``torch.nn.Module``.

DeepFreak (Sections 4.3 and 5.2 of the DiffraNet paper) is ResNet-50 (He et al.
2016) with its downsampling retuned for 512 x 512 single-channel detector
images: the paper searched the adaptations of Table 9 with BOHB and kept
variant 8 (Table 11, configuration B), whose last two stages have stride 3.

This module only builds networks; the scikit-learn wrapper that trains them is
:class:`diffranet.models.DeepFreakClassifier`. The blocks follow torchvision's
``models/resnet.py`` (the paper's baseline), so a standard ResNet-50 built here
has exactly its 25,557,032 parameters.

References
----------
K. He, X. Zhang, S. Ren and J. Sun, "Deep residual learning for image
recognition", CVPR 2016, doi:10.1109/CVPR.2016.90.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from .topology import PAPER_BEST, TOPOLOGIES, TOPOLOGY_PARAMETERS, Topology

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "DEPTHS",
    "PAPER_BEST",
    "ResNet",
    "TOPOLOGIES",
    "build_resnet",
    "deepfreak_resnet50",
    "feature_map_sizes",
    "resnet18",
    "resnet34",
    "resnet50",
]


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding 1 and no bias (a batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution without bias: the projection shortcut and the bottleneck ends."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus the shortcut (He et al. 2016, Fig. 5 left; ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand by 4, plus the shortcut (He et al. 2016, Fig. 5 right).

    The stride sits on the 3x3 convolution, as in torchvision (the paper's
    baseline), not on the first 1x1 as in the original Caffe model; the
    parameter count is the same either way.
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


#: depth -> (block, blocks per stage), He et al. 2016, Table 1.
DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def feature_map_sizes(input_size, **topology):
    """Side length of the square feature maps after each part of the network.

    ``topology`` holds keywords of :class:`~diffranet.models.topology.Topology`
    (as in :class:`ResNet`); see :meth:`Topology.feature_map_sizes`.
    """
    return Topology(**topology).feature_map_sizes(input_size)


class ResNet(nn.Module):
    """ResNet with DeepFreak's tunable downsampling (paper Table 9).

    Parameters
    ----------
    block : type
        :class:`BasicBlock` or :class:`Bottleneck`.
    layers : sequence of 4 int
        Blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
    num_classes : int
        Outputs of the final linear layer (logits).
    in_channels : int, default 1
        Image channels; detector images are grey, so 1 (3 for RGB ImageNet).
    width : int, default 64
        Filters of the stem and of the first stage; stage ``i`` has
        ``width * 2**i`` (times ``block.expansion`` at its output). The paper's
        "number of filters" (Table 9: 64, 16 or 8).
    stem_kernel, stem_stride : int, default 7, 2
        First convolution (Table 9 "1st convolution size/stride"; stride 4 in
        variant 4 quarters the 512 px image at once).
    stem_pool_size, stem_pool_stride : int or None, default 3, 2
        First max-pool ("1st pool"); ``None`` removes it (as in He et al.'s
        CIFAR networks), which suits inputs of a few dozen pixels.
    stage_strides : sequence of 4 int, default (1, 2, 2, 2)
        Stride of the first block of each stage. The paper's best network
        uses (1, 2, 3, 3): stride 3 in the last two stages downsamples a
        512 px image to 8 x 8 instead of 16 x 16 (Section 4.3).
    head_pool_size : int or None, default None
        Average pool before the classifier ("2nd pool"). ``None`` is global
        average pooling (torchvision since 0.3); an int is a fixed
        ``AvgPool2d(head_pool_size, head_pool_stride)`` as in the 2018
        torchvision ResNet the paper adapted, and then the classifier sees the
        flattened pooled map, so ``input_size`` is required.
    head_pool_stride : int, default 1
        Stride of the fixed head pool (Table 9 "2nd pool stride").
    input_size : int, optional
        Side of the square input; required with a fixed head pool, and
        checked against the topology when given.

    Raises
    ------
    ValueError
        For non-positive sizes, a wrong number of stages, or an input too small
        for the downsampling.
    """

    def __init__(self, block, layers, num_classes, *, in_channels=1, input_size=None, **topology):
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise ValueError(f"block must be BasicBlock or Bottleneck, got {block!r}")
        layers = tuple(layers)
        if len(layers) != 4:
            raise ValueError(f"layers must give the blocks of 4 stages, got {layers!r}")
        layers = tuple(_check_positive_int("layers", n) for n in layers)
        num_classes = _check_positive_int("num_classes", num_classes)
        in_channels = _check_positive_int("in_channels", in_channels)
        unknown = sorted(set(topology) - set(TOPOLOGY_PARAMETERS))
        if unknown:
            raise TypeError(f"ResNet() got unexpected keyword arguments {unknown}")
        topo = Topology(**topology)
        if topo.head_pool_size is not None and input_size is None:
            raise ValueError("a fixed head_pool_size needs input_size to size the classifier")
        head_size = 1 if input_size is None else topo.feature_map_sizes(input_size)["head"]
        width, stem_kernel, stem_pool_size = topo.width, topo.stem_kernel, topo.stem_pool_size
        stage_strides = topo.stage_strides

        self.inplanes = width
        self.conv1 = nn.Conv2d(
            in_channels, width, kernel_size=stem_kernel, stride=topo.stem_stride, padding=stem_kernel // 2,
            bias=False
        )
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        if stem_pool_size is None:
            self.maxpool = nn.Identity()
        else:
            self.maxpool = nn.MaxPool2d(kernel_size=stem_pool_size, stride=topo.stem_pool_stride,
                                        padding=stem_pool_size // 2)
        self.layer1 = self._make_layer(block, width, layers[0], stage_strides[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stage_strides[1])
        self.layer3 = self._make_layer(block, width * 4, layers[2], stage_strides[2])
        self.layer4 = self._make_layer(block, width * 8, layers[3], stage_strides[3])
        if topo.head_pool_size is None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
        else:
            self.avgpool = nn.AvgPool2d(topo.head_pool_size, stride=topo.head_pool_stride)
        self.fc = nn.Linear(width * 8 * block.expansion * head_size * head_size, num_classes)

        # He initialisation (He et al. 2015, doi:10.1109/ICCV.2015.123) as in torchvision; a network
        # built on the meta device (shapes only, to size it before allocating) has no values to set.
        if self.fc.weight.is_meta:
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # Projection shortcut (He et al. 2016, option B) where the shape changes.
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage.extend(block(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*stage)

    def forward(self, x):
        """Logits of shape (batch, num_classes) for images of shape (batch, in_channels, H, W)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_resnet(depth, num_classes, **kwargs):
    """A :class:`ResNet` of ``depth`` layers (18, 34, 50, 101 or 152); ``kwargs`` go to :class:`ResNet`."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth!r}")
    block, layers = DEPTHS[depth]
    return ResNet(block, layers, num_classes, **kwargs)


def resnet18(num_classes=1000, **kwargs):
    """ResNet-18 (He et al. 2016): basic blocks, (2, 2, 2, 2)."""
    return build_resnet(18, num_classes, **kwargs)


def resnet34(num_classes=1000, **kwargs):
    """ResNet-34 (He et al. 2016): basic blocks, (3, 4, 6, 3)."""
    return build_resnet(34, num_classes, **kwargs)


def resnet50(num_classes=1000, **kwargs):
    """ResNet-50 (He et al. 2016): bottleneck blocks, (3, 4, 6, 3)."""
    return build_resnet(50, num_classes, **kwargs)


def deepfreak_resnet50(num_classes=5, input_size=512, topology=8, **kwargs):
    """DeepFreak: ResNet-50 with a Table 9 ``topology`` (default 8, the paper's best) on grey images."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {list(TOPOLOGIES)}, got {topology!r}")
    return build_resnet(50, num_classes, input_size=input_size, **{**TOPOLOGIES[topology], **kwargs})
