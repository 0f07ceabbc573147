"""Property-based test: a mutated or truncated image file gives a 2-D image or a ValueError.

A valid small file of every format is written once; each example truncates
it, overwrites some of its bytes or inserts bytes, and reads the result with
:func:`diffranet.io.read_image`. Corrupt files must raise ``ValueError`` (the
readers' ``ImageFormatError``), never another exception, a crash or a huge
allocation. Each format also runs its untouched file, and a share of every
format's examples must give an image: a reader that refused everything would
otherwise pass. Outcome counts are reported by ``--hypothesis-show-statistics``.
"""

import bz2
import gzip
import os
import tempfile

import numpy as np
import pytest
from hypothesis import example, given, seed, settings
from hypothesis import strategies as st

from diffranet.io import read_image, write_image
from property_outcomes import REFUSED, Outcomes

FORMATS = {
    ".pgm": np.uint16, ".png": np.uint16, ".tif": np.uint16, ".cbf": np.int32, ".cbf.gz": np.int32,
    ".cbf.bz2": np.int32, ".h5": np.uint16, ".npy": np.uint16, ".npz": np.float32,
}
# compressed CBF files are read only: made by compressing the CBF file
COMPRESSORS = {".cbf.gz": gzip.compress, ".cbf.bz2": bz2.compress}
EXAMPLES = int(os.environ.get("DIFFRANET_PROPERTY_EXAMPLES", "90"))  # over all formats
#: Least share of a format's examples that must give an image: formats with checksums (gzip, bz2,
#: zip) refuse nearly every mutation, so for them the untouched file is the one image.
MIN_IMAGE_SHARE = 0.05


@pytest.fixture(scope="module")
def originals():
    """The bytes of one valid 5 x 7 image file per format."""
    image = (np.arange(35).reshape(5, 7) * 37 % 1000)
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ext, dtype in FORMATS.items():
            if ext in COMPRESSORS:
                continue
            path = os.path.join(tmp, "frame" + ext)
            write_image(path, image.astype(dtype))
            with open(path, "rb") as f:
                files[ext] = f.read()
    for ext, compress in COMPRESSORS.items():
        files[ext] = compress(files[".cbf"])
    return files


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("overwrite"), st.lists(st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=8)),
                                             min_size=1, max_size=6)),
    st.tuples(st.just("insert"), st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64))),
)


def mutate(data, mutation):
    kind, how = mutation
    if kind == "truncate":
        return data[:int(how * len(data))]
    if kind == "insert":
        at, extra = how
        i = int(at * len(data))
        return data[:i] + extra + data[i:]
    out = bytearray(data)
    for at, patch in how:
        i = min(int(at * len(out)), len(out) - 1)
        out[i:i + len(patch)] = patch
    return bytes(out)


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_mutated_file_gives_image_or_value_error(originals, ext):
    outcomes = Outcomes()

    @seed(20261130)
    @settings(max_examples=max(1, EXAMPLES // len(FORMATS)), deadline=None, database=None, print_blob=True)
    @given(mutation=mutations)
    @example(mutation=("truncate", 1.0))  # the untouched file
    def read_mutated(mutation):
        data = mutate(originals[ext], mutation)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "mutated" + ext)
            with open(path, "wb") as f:
                f.write(data)
            try:
                image = read_image(path)
            except ValueError:
                outcomes.record(REFUSED, ext)
                return
        outcomes.record("image", ext)
        assert isinstance(image, np.ndarray) and image.ndim == 2

    read_mutated()
    outcomes.require("image", MIN_IMAGE_SHARE)
