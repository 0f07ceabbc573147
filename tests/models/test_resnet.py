"""The DeepFreak ResNet: block wiring, topology table, output shapes and bad configurations."""

import pytest

torch = pytest.importorskip("torch")

from diffranet.models.resnet import (  # noqa: E402
    DEPTHS,
    PAPER_BEST,
    TOPOLOGIES,
    BasicBlock,
    Bottleneck,
    ResNet,
    build_resnet,
    deepfreak_resnet50,
    feature_map_sizes,
    resnet18,
    resnet34,
    resnet50,
)


def n_parameters(model):
    return sum(p.numel() for p in model.parameters())


def logits(model, batch, size, channels=1):
    with torch.inference_mode():
        return model.eval()(torch.zeros(batch, channels, size, size))


class TestParameterCounts:
    """ImageNet topologies (3 channels, 1000 classes) have the published sizes (He et al. 2016, Table 3)."""

    @pytest.mark.parametrize(
        ("builder", "expected"),
        [(resnet18, 11_689_512), (resnet34, 21_797_672), (resnet50, 25_557_032)],
    )
    def test_imagenet(self, builder, expected):
        assert n_parameters(builder(1000, in_channels=3)) == expected

    def test_resnet50_rounds_to_published_25_6m(self):
        assert round(n_parameters(resnet50(1000, in_channels=3)) / 1e6, 1) == 25.6

    def test_grey_input_removes_two_thirds_of_the_stem(self):
        # 64 filters of 7 x 7: one input channel instead of three.
        difference = n_parameters(resnet50(1000, in_channels=3)) - n_parameters(resnet50(1000))
        assert difference == 64 * 7 * 7 * 2

    def test_expansion(self):
        assert BasicBlock.expansion == 1
        assert Bottleneck.expansion == 4
        assert resnet50(10).fc.in_features == 2048
        assert resnet18(10).fc.in_features == 512


class TestOutputShape:
    @pytest.mark.parametrize("depth", [18, 34, 50])
    @pytest.mark.parametrize("stage_strides", [(1, 2, 2, 2), (1, 2, 3, 3), (2, 2, 2, 2), (1, 1, 1, 1)])
    def test_global_pool(self, depth, stage_strides):
        model = build_resnet(depth, 5, width=4, stage_strides=stage_strides, input_size=64)
        assert logits(model, 2, 64).shape == (2, 5)

    @pytest.mark.parametrize("stem_pool_size", [3, None])
    def test_stem_options(self, stem_pool_size):
        model = build_resnet(18, 3, width=4, stem_kernel=3, stem_stride=1, stem_pool_size=stem_pool_size)
        assert logits(model, 1, 16).shape == (1, 3)

    def test_paper_best_at_512(self):
        # Table 1: 512 -> 256 (conv) -> 128 (pool) -> 128, 64, 22, 8 (stages) -> 2 (7 x 7 pool, stride 1).
        sizes = feature_map_sizes(512, **{k: v for k, v in TOPOLOGIES[8].items() if k != "width"})
        assert sizes == {"stem": 256, "pool": 128, "stage1": 128, "stage2": 64, "stage3": 22, "stage4": 8, "head": 2}
        model = deepfreak_resnet50()
        assert model.fc.in_features == 2048 * 2 * 2
        assert logits(model, 1, 512).shape == (1, 5)

    @pytest.mark.parametrize("variant", list(TOPOLOGIES))
    def test_every_table9_variant_fits_512(self, variant):
        model = build_resnet(18, 5, input_size=512, **{**TOPOLOGIES[variant], "width": 2})
        assert logits(model, 1, 512).shape == (1, 5)

    def test_fixed_pool_matches_computed_size(self):
        model = build_resnet(18, 4, width=4, input_size=96, head_pool_size=2, head_pool_stride=1)
        # 96 -> 48 -> 24 -> 24, 12, 6, 3 -> 2
        assert model.fc.in_features == 32 * 2 * 2
        assert logits(model, 3, 96).shape == (3, 4)


class TestTopologyTable:
    def test_paper_best_is_configuration_b(self):
        assert PAPER_BEST["depth"] == 50
        assert PAPER_BEST["stage_strides"] == (1, 2, 3, 3)
        assert (PAPER_BEST["head_pool_size"], PAPER_BEST["head_pool_stride"]) == (7, 1)
        assert (PAPER_BEST["stem_kernel"], PAPER_BEST["stem_stride"]) == (7, 2)
        assert (PAPER_BEST["stem_pool_size"], PAPER_BEST["stem_pool_stride"]) == (3, 2)
        assert PAPER_BEST["width"] == 64

    def test_table9_rows(self):
        assert set(TOPOLOGIES) == {"default", *range(1, 14)}
        assert [TOPOLOGIES[v]["width"] for v in range(1, 14)] == [64] * 8 + [8, 8, 64, 16, 16]
        assert TOPOLOGIES[4]["stem_stride"] == 4
        assert TOPOLOGIES[6]["head_pool_size"] == 15
        assert TOPOLOGIES[11]["stage_strides"] == (1, 2, 2, 3)

    def test_depths(self):
        assert DEPTHS[18] == (BasicBlock, (2, 2, 2, 2))
        assert DEPTHS[50] == (Bottleneck, (3, 4, 6, 3))


class TestBadConfigurations:
    def test_depth(self):
        with pytest.raises(ValueError, match="depth"):
            build_resnet(20, 5)

    def test_topology(self):
        with pytest.raises(ValueError, match="topology"):
            deepfreak_resnet50(topology=14)

    @pytest.mark.parametrize("strides", [(1, 2, 2), (1, 2, 2, 2, 2), (1, 0, 2, 2), "1222"])
    def test_stage_strides(self, strides):
        with pytest.raises(ValueError, match="stage_strides"):
            resnet18(5, stage_strides=strides)

    @pytest.mark.parametrize("name", ["width", "stem_kernel", "stem_stride", "stem_pool_size", "in_channels"])
    def test_non_positive(self, name):
        with pytest.raises(ValueError, match=name):
            resnet18(5, **{name: 0})

    def test_num_classes(self):
        with pytest.raises(ValueError, match="num_classes"):
            resnet18(0)

    def test_layers(self):
        with pytest.raises(ValueError, match="layers"):
            ResNet(BasicBlock, (2, 2, 2), 5)

    def test_block(self):
        with pytest.raises(ValueError, match="block"):
            ResNet(object, (2, 2, 2, 2), 5)

    def test_head_pool_needs_input_size(self):
        with pytest.raises(ValueError, match="input_size"):
            resnet18(5, head_pool_size=7)

    def test_head_pool_larger_than_map(self):
        # 64 px with the paper's strides ends on a 1 x 1 map: a 7 x 7 pool cannot fit.
        with pytest.raises(ValueError, match="head_pool_size=None"):
            deepfreak_resnet50(input_size=64)

    def test_input_size(self):
        with pytest.raises(ValueError, match="input_size"):
            feature_map_sizes(0)
