"""DeepFreak's training: the loop of the paper's Table 2, its learning-rate schedule and the batch-norm pass.

SGD with momentum and weight decay on the cross-entropy, the learning rate
multiplied by ``lr_gamma`` every ``lr_step_epochs`` epochs (:func:`step_schedule`),
batch-norm statistics recomputed under each epoch's final weights
(:func:`recompute_batch_norm`), optional early stopping, and a checkpoint
after every epoch (:mod:`._checkpoint`). Every draw (initialisation,
shuffling, augmentation, the batch-norm images) comes from the fit's seed and
the epoch number, so a resumed fit continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
from sklearn.model_selection import train_test_split

from ._checkpoint import Checkpoint, checkpoint_config
from ._data import loader

__all__ = [
    "BATCH_NORM_CHUNK",
    "accuracy",
    "batches",
    "chunks",
    "dihedral",
    "mean_image",
    "recompute_batch_norm",
    "step_schedule",
    "torch_session",
    "train",
]

#: Images per forward pass when batch-norm statistics are recomputed.
BATCH_NORM_CHUNK = 64


def chunks(order, size):
    """``order`` in consecutive chunks of ``size``; a final chunk of one image joins the previous one.

    Batch normalisation in training mode cannot normalise a single image
    whose last feature map is 1 x 1, so with sizes above one no chunk of one
    is formed.
    """
    parts = [order[i : i + size] for i in range(0, len(order), size)]
    if size > 1 and len(parts) > 1 and len(parts[-1]) == 1:
        tail = parts.pop()
        parts[-1] = np.concatenate([parts[-1], tail])
    return parts


def batches(n, batch_size, generator, torch):
    """Shuffled training batches of ``range(n)`` (see :func:`chunks`), each in index order."""
    order = torch.randperm(n, generator=generator).numpy()
    return [np.sort(batch) for batch in chunks(order, batch_size)]


@contextlib.contextmanager
def torch_session(torch, n_threads, deterministic):
    """Set torch's thread count and, with ``deterministic``, its deterministic mode for one call; restore them.

    Without ``deterministic`` (prediction) the mode is neither set nor
    restored: ``torch.use_deterministic_algorithms`` imports torch's compiler
    on its first call, 1.4 s that a process classifying one file would wait.
    """
    threads = torch.get_num_threads()
    if deterministic:
        det = torch.are_deterministic_algorithms_enabled()
        det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        torch.set_num_threads(threads)
        if deterministic:
            torch.use_deterministic_algorithms(det, warn_only=det_warn)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def dihedral(x, generator, torch):
    """The batch ``x`` (B, C, H, W) under random symmetries of the square, drawn from ``generator``."""
    choice = torch.randint(0, 8, (len(x),), generator=generator).tolist()
    out = torch.empty_like(x)
    for code in set(choice):
        rows = [i for i, c in enumerate(choice) if c == code]
        part = torch.rot90(x[rows], k=code % 4, dims=(2, 3))
        out[rows] = torch.flip(part, dims=(3,)) if code >= 4 else part
    return out


def step_schedule(optimizer, torch, *, step_epochs, gamma, epochs):
    """The learning-rate schedule: times ``gamma`` every ``step_epochs`` epochs (None: constant over ``epochs``)."""
    step = step_epochs if step_epochs is not None else epochs + 1
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=gamma)


def mean_image(dataset, prepare, *, input_size, batch_size, workers, torch, device):
    """Per-pixel mean of the prepared (rescaled, resized) images, accumulated one batch at a time:
    (input_size, input_size), or (channels, input_size, input_size) for inputs of several channels.

    ``prepare(images)`` is the estimator's input path without mean subtraction.
    """
    n = len(dataset)
    total = None
    order = [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    with torch.inference_mode():
        for images, _ in loader(dataset, order, workers, torch.Generator().manual_seed(0), torch):
            part = prepare(images).sum(dim=0, dtype=torch.float64)
            total = part if total is None else total + part
    if total is None:
        total = torch.zeros((1, input_size, input_size), dtype=torch.float64, device=device)
    mean = total / n
    return (mean[0] if len(mean) == 1 else mean).float().cpu().numpy()  # (size, size) for one channel


def recompute_batch_norm(model, dataset, indices, prepare, *, n_images, seed, torch):
    """Batch-norm statistics of ``n_images`` of the images ``indices`` under the current weights.

    Each layer's running mean and variance become the plain average of
    the batch statistics over the chosen images (drawn from ``seed``), in
    chunks of :data:`BATCH_NORM_CHUNK` (fixed, so that the result does not
    depend on execution settings; see :func:`chunks`). ``prepare(images)``
    gives the network's input, mean subtracted.
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    n = min(n_images, len(indices))
    if not layers or n < 2:
        return
    chosen = np.sort(np.random.default_rng(seed).choice(indices, size=n, replace=False))
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average
    model.train()
    try:
        with torch.no_grad():
            for part in chunks(chosen, BATCH_NORM_CHUNK):
                images, _ = dataset.__getitems__(part)
                model(prepare(images))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def accuracy(model, dataset, indices, encoded, prepare, *, batch_size, torch):
    """Fraction of the images ``indices`` of ``dataset`` whose most probable class is ``encoded``."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(indices), batch_size):
            idx = indices[start : start + batch_size]
            images, _ = dataset.__getitems__(idx)
            logits = model(prepare(images))
            correct += int((logits.argmax(1).cpu().numpy() == encoded[idx]).sum())
    return correct / len(indices)


def _progress_fields(epochs, epoch, loss, scores, count, epoch_start):
    """Progress-bar fields: epoch, mean loss, last validation accuracy, training images/s."""
    fields = {"epoch": f"{epoch + 1}/{epochs}", "loss": f"{loss:.4f}"}
    if scores:
        fields["val_acc"] = f"{scores[-1]:.4f}"
    fields["img/s"] = f"{count / max(time.perf_counter() - epoch_start, 1e-9):.1f}"
    return fields


def _split(n, encoded, clf, seed):
    """Training and held-out indices of early stopping's hold-out (stratified when every class allows it)."""
    train_idx = np.arange(n)
    try:
        train_idx, val_idx = train_test_split(
            train_idx, test_size=clf.validation_fraction, stratify=encoded, random_state=seed
        )
    except ValueError:
        train_idx, val_idx = train_test_split(train_idx, test_size=clf.validation_fraction, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def train(clf, dataset, encoded, seed, torch, device, val_set=None):
    """Train the network of the estimator ``clf`` (whose ``classes_`` and ``mean_image_`` are set).

    Parameters
    ----------
    clf : DeepFreakClassifier
        Gives the parameters, the network (``_build_network``), the starting
        weights of ``init`` and the input path (``_preprocess``, ``_augment``).
    dataset : ArrayImages or DatasetImages
        Training images and their encoded labels.
    encoded : ndarray of int64
        Encoded labels of ``dataset`` (for early stopping's stratified hold-out).
    seed : int
        Seed of the fit; a checkpoint's seed replaces it when the fit resumes.
    torch : module
    device : torch.device
    val_set : tuple (images, encoded labels), optional
        Scored after every epoch instead of a hold-out.

    Returns
    -------
    network : torch.nn.Module
        Trained (early stopping's best weights when it stopped early).
    history : dict
        The fitted attributes ``seed_``, ``loss_curve_``, ``validation_scores_``,
        ``epoch_seconds_`` and ``n_epochs_``.
    """
    n = len(dataset)
    checkpoint, state = None, None
    if clf.checkpoint_path is not None:
        checkpoint = Checkpoint(clf.checkpoint_path, checkpoint_config(clf.get_params(deep=False)),
                                clf.classes_.tolist(), n, clf.mean_image_)
        state = checkpoint.load(torch, device)
        if state is not None:
            seed = int(state["seed"])

    train_idx, val_idx = np.arange(n), None
    val_dataset, val_encoded = (dataset, encoded) if val_set is None else val_set
    if val_set is not None:
        val_idx = np.arange(len(val_dataset))
    elif clf.early_stopping:
        train_idx, val_idx = _split(n, encoded, clf, seed)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = clf._build_network(len(clf.classes_))
    if clf.init is not None and state is None:
        model.load_state_dict(clf._initial_weights())
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=clf.learning_rate, momentum=clf.momentum, weight_decay=clf.weight_decay
    )
    scheduler = step_schedule(optimizer, torch, step_epochs=clf.lr_step_epochs, gamma=clf.lr_gamma,
                              epochs=clf.epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    mean = torch.from_numpy(clf.mean_image_).to(device)

    def prepare(images):
        return clf._preprocess(images, torch, device, mean)

    start = 0
    history = {"loss_curve": [], "validation_scores": [], "epoch_seconds": []}
    best_state, best_score, stale = None, -np.inf, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["epoch"])
        history = {"loss_curve": list(state["loss_curve"]), "validation_scores": list(state["validation_scores"]),
                   "epoch_seconds": list(state.get("epoch_seconds", []))}
        best_state, best_score, stale = state["best_model"], float(state["best_score"]), int(state["stale"])
    scores = history["validation_scores"]

    progress = None
    if clf.verbose and start < clf.epochs:
        # imported on use: tqdm is needed only for the progress bar
        from tqdm.auto import tqdm

        progress = tqdm(total=(clf.epochs - start) * len(train_idx), desc="DeepFreak", unit="img", unit_scale=True)
    generator, augment_generator = torch.Generator(), torch.Generator()
    try:
        for epoch in range(start, clf.epochs):
            if clf.early_stopping and stale >= clf.n_iter_no_change:
                break
            # One generator state per epoch: a resumed fit shuffles exactly as an uninterrupted one.
            generator.manual_seed(seed + 1 + epoch)
            augment_generator.manual_seed((seed + 1 + epoch) ^ 0x5A5A5A5A)
            order = [train_idx[b] for b in batches(len(train_idx), clf.batch_size, generator, torch)]
            model.train()
            total, count = 0.0, 0
            epoch_start = time.perf_counter()
            for images, targets in loader(dataset, order, clf.workers, generator, torch):
                x = clf._augment(clf._preprocess(images, torch, device), augment_generator, torch) - mean
                target = torch.from_numpy(targets).to(device)
                loss = loss_fn(model(x), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(targets)
                count += len(targets)
                if progress is not None:
                    progress.update(len(targets))
                    progress.set_postfix(_progress_fields(clf.epochs, epoch, total / count, scores, count,
                                                          epoch_start), refresh=False)
            scheduler.step()
            history["epoch_seconds"].append(time.perf_counter() - epoch_start)
            recompute_batch_norm(model, dataset, train_idx, prepare, n_images=clf.batch_norm_images,
                                 seed=seed + 1 + epoch, torch=torch)
            history["loss_curve"].append(total / count)
            if val_idx is not None:
                score = accuracy(model, val_dataset, val_idx, val_encoded, prepare,
                                 batch_size=clf.predict_batch_size, torch=torch)
                scores.append(score)
                if progress is not None:
                    progress.set_postfix(_progress_fields(clf.epochs, epoch, total / count, scores, count,
                                                          epoch_start))
            if clf.early_stopping:
                if score > best_score:
                    best_score, stale = score, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    stale += 1
            if checkpoint is not None:
                checkpoint.save(torch, seed=seed, epoch=epoch + 1, model=model, optimizer=optimizer,
                                scheduler=scheduler, history=history, best_model=best_state,
                                best_score=best_score, stale=stale)
    finally:
        if progress is not None:
            progress.close()
    if clf.early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    fitted = {"seed_": seed, **{f"{name}_": values for name, values in history.items()}}
    return model, dict(fitted, n_epochs_=len(history["loss_curve"]))
