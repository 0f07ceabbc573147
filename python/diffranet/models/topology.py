"""The ResNet topology: the downsampling settings DeepFreak tunes (paper Table 9), listed once.

:class:`Topology` names and checks them; :class:`diffranet.models.resnet.ResNet`,
:func:`diffranet.models.resnet.feature_map_sizes` and
:class:`diffranet.models.DeepFreakClassifier` all take exactly these keywords
(:data:`TOPOLOGY_PARAMETERS`). Needs no torch.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral

__all__ = ["PAPER_BEST", "TOPOLOGIES", "TOPOLOGY_PARAMETERS", "Topology"]


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _conv_out(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


@dataclasses.dataclass(frozen=True)
class Topology:
    """Width and downsampling of a ResNet (defaults: torchvision's, with global average pooling).

    Parameters
    ----------
    width : int, default 64
        Filters of the stem and of the first stage (Table 9 "number of filters").
    stem_kernel, stem_stride : int, default 7, 2
        First convolution.
    stem_pool_size : int or None, default 3
        First max-pool; None removes it.
    stem_pool_stride : int, default 2
    stage_strides : sequence of 4 int, default (1, 2, 2, 2)
        Stride of the first block of each stage.
    head_pool_size : int or None, default None
        Average pool before the classifier; None is global average pooling.
    head_pool_stride : int, default 1

    Examples
    --------
    >>> Topology(stage_strides=(1, 2, 3, 3)).feature_map_sizes(512)["stage4"]
    8
    """

    width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool_size: int | None = 3
    stem_pool_stride: int = 2
    stage_strides: tuple = (1, 2, 2, 2)
    head_pool_size: int | None = None
    head_pool_stride: int = 1

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "stage_strides":
                strides = tuple(value) if not isinstance(value, (str, bytes)) else ()
                if len(strides) != 4:
                    raise ValueError(f"stage_strides must be 4 positive integers (one per stage), got {value!r}")
                value = tuple(_check_positive_int("stage_strides", s) for s in strides)
            elif value is not None or field.name not in ("stem_pool_size", "head_pool_size"):
                value = _check_positive_int(field.name, value)
            object.__setattr__(self, field.name, value)

    def as_dict(self):
        """The settings as keyword arguments."""
        return {name: getattr(self, name) for name in TOPOLOGY_PARAMETERS}

    def feature_map_sizes(self, input_size):
        """Side length of the square feature maps after each part of the network.

        Parameters
        ----------
        input_size : int
            Side of the square input image, in pixels.

        Returns
        -------
        sizes : dict
            ``{"stem": ..., "pool": ..., "stage1": ..., ..., "stage4": ..., "head": ...}``;
            "head" is 1 for global average pooling.

        Raises
        ------
        ValueError
            If ``input_size`` is not a positive integer, or the head pool is
            larger than the last feature map. (Convolutions and the max-pool are
            padded by half their kernel, so no map is ever empty.)
        """
        size = _check_positive_int("input_size", input_size)
        sizes = {}
        size = sizes["stem"] = _conv_out(size, self.stem_kernel, self.stem_stride, self.stem_kernel // 2)
        if self.stem_pool_size is not None:
            size = _conv_out(size, self.stem_pool_size, self.stem_pool_stride, self.stem_pool_size // 2)
        sizes["pool"] = size
        for i, stride in enumerate(self.stage_strides, start=1):
            # Both the 3x3 convolution (padding 1) and the 1x1 shortcut give this size.
            size = sizes[f"stage{i}"] = _conv_out(size, 1, stride, 0)
        if self.head_pool_size is None:
            sizes["head"] = 1
        elif self.head_pool_size > size:
            raise ValueError(
                f"head_pool_size {self.head_pool_size} exceeds the last feature map ({size} x {size} for "
                f"input_size {input_size}); use a larger input_size, a smaller pool, or "
                "head_pool_size=None for global average pooling"
            )
        else:
            sizes["head"] = _conv_out(size, self.head_pool_size, self.head_pool_stride, 0)
        return sizes


#: Keyword names of the topology, in one place.
TOPOLOGY_PARAMETERS = tuple(field.name for field in dataclasses.fields(Topology))


def _variant(**changes):
    # The first convolution (kernel 7) and the first max-pool (3, stride 2) are
    # never changed in Table 9; "2nd pool" is the average pool before the
    # classifier (7 x 7 in the 2018 torchvision ResNet the paper adapted), and
    # "number of filters" the width of the stem and first stage.
    return Topology(**{"head_pool_size": 7, **changes}).as_dict()


#: The topology adaptations the paper searched (Table 9), by variant name.
#: Each entry holds keyword arguments of :class:`ResNet` and of
#: ``DeepFreakClassifier``: ``DeepFreakClassifier(**TOPOLOGIES[6])`` is
#: configuration A of Table 11. "default" is torchvision's ResNet at 224 px.
TOPOLOGIES = {
    "default": _variant(),
    1: _variant(head_pool_size=9, head_pool_stride=2),
    2: _variant(head_pool_size=13, head_pool_stride=2),
    3: _variant(stage_strides=(2, 2, 2, 2)),
    4: _variant(stem_stride=4),
    5: _variant(head_pool_stride=2, stage_strides=(2, 2, 2, 2)),
    6: _variant(head_pool_size=15, head_pool_stride=2),
    7: _variant(head_pool_size=8, stage_strides=(2, 2, 2, 2)),
    8: _variant(stage_strides=(1, 2, 3, 3)),
    9: _variant(width=8),
    10: _variant(width=8, head_pool_stride=2),
    11: _variant(head_pool_size=9, head_pool_stride=2, stage_strides=(1, 2, 2, 3)),
    12: _variant(width=16, head_pool_size=9, head_pool_stride=2),
    13: _variant(width=16, head_pool_stride=2),
}

#: DeepFreak as published (Table 1, Table 11 configuration B): variant 8 on ResNet-50.
PAPER_BEST = {"depth": 50, **TOPOLOGIES[8]}
