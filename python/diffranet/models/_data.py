"""DeepFreak's data path: image arrays and torch Datasets to the tensors the network takes.

Two adapters give the training loop and prediction one interface, a batch of
images fetched by index (``__getitems__``): :class:`ArrayImages` over an array
(or memmap) and :class:`DatasetImages` over a user's ``Dataset``. The input
stages turn such a batch into the network's input: :func:`input_stage` (numpy:
the images, or their significance map) and :func:`tensor_stage` (torch: block
maxima or resizing, rescaling to [0, 1], mean subtraction), the latter also the
first part of the exported ONNX graph (:mod:`diffranet.models.runtime`).

Nothing here imports torch at module level: torch is passed in by the callers,
which import it only when a network is used.
"""

from __future__ import annotations

import sys

import numpy as np

from ..features.significance import significance_map

__all__ = [
    "INPUT_CHANNELS",
    "ArrayImages",
    "DatasetImages",
    "as_image",
    "identity_collate",
    "input_stage",
    "is_dataset",
    "label_key",
    "loader",
    "scan_dataset",
    "tensor_stage",
]


#: What the network sees of an 8-bit image, and its channels: the grey values (the paper); the
#: significance of each 4 x 4 block's maximum; the significance of its two largest values.
INPUT_CHANNELS = {None: 1, "significance": 1, "significance_top2": 2}


def is_dataset(X):
    """Whether ``X`` is a torch ``Dataset`` (without importing torch when it is absent)."""
    torch_data = sys.modules.get("torch.utils.data")
    return torch_data is not None and isinstance(X, torch_data.Dataset)


def label_key(label):
    """A hashable Python value for a label from a Dataset (tensor and numpy scalars unwrapped)."""
    if hasattr(label, "item") and np.ndim(label) == 0:
        return label.item()
    return label


def as_image(image):
    """A 2-D numpy image from a Dataset item (numpy array or CPU tensor; a leading channel of 1 dropped)."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ValueError(f"Dataset images must be 2-D (height, width), got shape {image.shape}")
    return image


class ArrayImages:
    """Map-style dataset over an image array and encoded labels, fetched a batch at a time."""

    def __init__(self, images, labels=None):
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.images)

    def __getitems__(self, indices):
        # Sorted fancy indexing copies one batch only (and reads memmaps in order).
        indices = np.asarray(indices)
        batch = self.images[indices]
        labels = None if self.labels is None else self.labels[indices]
        return batch, labels

    def __getitem__(self, index):
        return self.__getitems__([index])


class DatasetImages:
    """Wraps a user ``Dataset`` of (image, label) or image items, labels encoded through ``index``."""

    def __init__(self, dataset, indices=None, index=None):
        self.dataset = dataset
        self.indices = np.arange(len(dataset)) if indices is None else np.asarray(indices)
        self.index = index

    def __len__(self):
        return len(self.indices)

    def __getitems__(self, indices):
        images, labels = [], []
        for i in indices:
            item = self.dataset[int(self.indices[i])]
            if isinstance(item, (tuple, list)):
                image, label = item[0], item[1] if len(item) > 1 else None
            else:
                image, label = item, None
            images.append(as_image(image))
            labels.append(label_key(label))
        shapes = {image.shape for image in images}
        if len(shapes) != 1:
            raise ValueError(f"Dataset images must all have one shape, got {sorted(shapes)}")
        encoded = None
        if self.index is not None:
            try:
                encoded = np.array([self.index[label] for label in labels], dtype=np.int64)
            except KeyError as exc:
                raise ValueError(f"label {exc.args[0]!r} was not seen in fit") from None
        return np.stack(images), encoded

    def __getitem__(self, index):
        return self.__getitems__([index])


def identity_collate(batch):
    """The DataLoader's collate function: the adapters already return whole batches."""
    return batch


def loader(dataset, batches, workers, generator, torch):
    """A DataLoader yielding ``(images, encoded labels)`` of each batch of indices in ``batches``."""
    # The generator seeds worker processes; without one the DataLoader would draw from torch's global RNG.
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=identity_collate,
        num_workers=workers,
        generator=generator,
    )


def scan_dataset(dataset):
    """Labels, image shape and grey-value range of a Dataset of (image, label) items, in one pass.

    Returns
    -------
    labels : ndarray
    shape : tuple (height, width)
    observed_range : tuple (low, high)
        (0, 255) when every image is uint8, else the smallest and largest value.
    """
    labels, shape, low, high, is_uint8 = [], None, np.inf, -np.inf, True
    for i in range(len(dataset)):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError("fit needs a Dataset of (image, label) items")
        image = as_image(item[0])
        if shape is None:
            shape = image.shape
        elif image.shape != shape:
            raise ValueError(f"Dataset images must all have one shape, got {shape} and {image.shape}")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"Dataset image {i} contains NaN or infinity")
        is_uint8 &= image.dtype == np.uint8
        low, high = min(low, float(image.min())), max(high, float(image.max()))
        labels.append(label_key(item[1]))
    if shape is None:
        raise ValueError("fit needs a non-empty Dataset")
    return np.asarray(labels), shape, (0.0, 255.0) if is_uint8 else (low, high)


def input_stage(batch, input_transform):
    """The array :func:`tensor_stage` takes: the images, or their significance map (numpy; with
    ``"significance_top2"`` of shape (n, 2, rows / 4, cols / 4))."""
    batch = np.asarray(batch)
    if input_transform in ("significance", "significance_top2"):
        return significance_map(batch, second=input_transform == "significance_top2")
    return np.ascontiguousarray(batch)


def tensor_stage(x, torch, device, *, input_size, resize, pixel_range, mean=None):
    """(B, rows, cols) or (B, C, rows, cols) tensor of :func:`input_stage` -> (B, C, input_size, input_size)
    float32 tensor (C = 1 for the former).

    Block maxima or resizing to ``input_size``, rescaling of ``pixel_range``
    to [0, 1] and subtraction of ``mean``.

    Parameters
    ----------
    x : torch.Tensor of shape (B, rows, cols) or (B, C, rows, cols)
    torch : module
    device : torch.device or str
    input_size : int
        Side of the network's input.
    resize : {"bilinear", "area", "max"}
        Resampling to ``input_size``.
    pixel_range : tuple (low, high)
        Values mapped to 0 and 1.
    mean : torch.Tensor of shape (input_size, input_size) or (C, input_size, input_size), optional
        Subtracted last.
    """
    rows, cols = x.shape[-2:]
    size = input_size
    one_channel = x.dim() == 3
    if one_channel and resize == "max" and (rows, cols) != (size, size) and rows % size == 0 and cols % size == 0:
        # Block maxima of the raw values: the same as after the (increasing) rescaling below, but
        # on 8-bit data, before any conversion, and on a 16 times smaller array when shrinking 4 x 4.
        x = x.reshape(-1, size, rows // size, size, cols // size).amax(dim=(2, 4))
    x = x.to(device=device, dtype=torch.float32)
    low, high = pixel_range
    x = (x - low) / (high - low)
    if one_channel:
        x = x.unsqueeze(1)
    if x.shape[-2:] != (input_size, input_size):
        size = (input_size, input_size)
        if resize == "area":
            x = torch.nn.functional.interpolate(x, size=size, mode="area")
        elif resize == "max":
            x = torch.nn.functional.adaptive_max_pool2d(x, size)
        else:
            x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    if mean is not None:
        x = x - mean
    return x
