"""DeepFreak's input path: the max-pool shrink keeps single-pixel spots and equals torch's adaptive max-pool;
the dihedral augmentation applies the eight symmetries of the square; channels-last changes no result."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from diffranet import DeepFreakClassifier  # noqa: E402


def _prepared(**params):
    clf = DeepFreakClassifier(**params)
    clf.pixel_range_ = (0.0, 255.0)
    return clf


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_block_max_equals_adaptive_max_pool(dtype):
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (3, 96, 64)).astype(dtype)
    clf = _prepared(input_size=32, resize="max")
    fast = clf._preprocess(batch, torch, torch.device("cpu"))
    x = torch.from_numpy(batch.astype(np.float32)).unsqueeze(1) / 255.0
    # rows are shrunk 3-fold, columns 2-fold: the adaptive pool on the rescaled image, computed by torch
    reference = torch.nn.functional.adaptive_max_pool2d(x, (32, 32))
    assert fast.shape == (3, 1, 32, 32)
    assert torch.equal(fast, reference)


def test_not_a_multiple_falls_back_to_the_adaptive_pool():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (2, 50, 50)).astype(np.uint8)
    out = _prepared(input_size=16, resize="max")._preprocess(batch, torch, torch.device("cpu"))
    reference = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(batch).float().unsqueeze(1) / 255, 16)
    assert torch.equal(out, reference)


def test_single_pixel_spot_keeps_its_height():
    image = np.zeros((1, 512, 512), np.uint8)
    image[0, 257, 3] = 180
    out = _prepared(input_size=128, resize="max")._preprocess(image, torch, torch.device("cpu"))
    assert float(out[0, 0, 64, 0]) == pytest.approx(180 / 255) and int((out > 0).sum()) == 1


def test_dihedral_augmentation_draws_the_eight_symmetries():
    clf = _prepared(augment="dihedral")
    base = torch.arange(16.0).reshape(1, 1, 4, 4)
    x = base.repeat(400, 1, 1, 1)
    out = clf._augment(x, torch.Generator().manual_seed(0), torch)
    expected = set()
    for k in range(4):
        r = torch.rot90(base, k, dims=(2, 3))
        expected |= {tuple(r.flatten().tolist()), tuple(torch.flip(r, dims=(3,)).flatten().tolist())}
    seen = {tuple(image.flatten().tolist()) for image in out}
    assert len(expected) == 8 and seen == expected
    again = clf._augment(x, torch.Generator().manual_seed(0), torch)
    assert torch.equal(out, again)  # drawn from the generator only
    assert _prepared()._augment(x, torch.Generator(), torch) is x  # no augmentation by default


def test_channels_last_network_gives_the_contiguous_result():
    clf = DeepFreakClassifier(depth=18, width=4, input_size=32, head_pool_size=None)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = clf._set_model(clf._build_network(5))
    assert network.conv1.weight.is_contiguous(memory_format=torch.channels_last) and not network.training
    x = torch.randn(6, 1, 32, 32)
    with torch.inference_mode():
        fast = network(x)
        network.to(memory_format=torch.contiguous_format)
        reference = network(x.contiguous())
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
