"""Hyperopt (TPE) search of extractor + classifier for the classic classifiers.

As in the paper (Sections 4.1-4.2, Appendix B), the extractor and the
classifier are chosen jointly from :data:`~diffranet.search.spaces.TABLE8`;
each configuration is trained on the training split and scored by its
accuracy on the validation split. Features are cached per extractor
configuration (in memory and on disk), the trials are saved after every
evaluation so an interrupted search resumes where it stopped, and the best
configuration is refitted on the training split and saved.

References
----------
J. Bergstra, D. Yamins, D. D. Cox, "Making a science of model search:
hyperparameter optimization in hundreds of dimensions for vision
architectures", Proc. ICML 2013, PMLR 28(1) 115-123.
J. Bergstra, R. Bardenet, Y. Bengio, B. Kegl, "Algorithms for hyper-parameter
optimization", NeurIPS 2011.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, hp, tpe
except ImportError as exc:  # an install without the extra
    raise ImportError("the classic search needs Hyperopt: pip install 'diffranet[search]'") from exc
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .._atomic import atomic_write
from .._validation import check_int, check_seed
from ..training.classic import build_classifier, build_extractor, build_pipeline, save_model
from ..training.metrics import split_scores
from .spaces import TABLE8, non_empty_subsets

TRIALS_FILE = "trials.pkl"
MODEL_FILE = "best_model.dfm"


def _as_json(value):
    """Tuples to lists (also inside dicts), so that configurations are plain JSON data."""
    if isinstance(value, dict):
        return {key: _as_json(v) for key, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_as_json(v) for v in value]
    return value


def hyperopt_space(space=TABLE8):
    """The Hyperopt expression of a :class:`~diffranet.search.spaces.ClassicSpace`.

    A sample is a configuration ``{"extractor": {...}, "model": {...}}``. GLCM
    distances and angles are categorical over every non-empty combination.
    """
    extractors = {
        "glcm": {
            "name": "glcm",
            "distances": hp.choice("glcm_distances", non_empty_subsets(space.glcm_distances)),
            "angles": hp.choice("glcm_angles", non_empty_subsets(space.glcm_angles)),
        },
        "lbp": {
            "name": "lbp",
            "n_points": hp.choice("lbp_points", list(space.lbp_points)),
            "radius": hp.choice("lbp_radius", list(space.lbp_radius)),
        },
        "bovw": {"name": "bovw", "n_clusters": hp.choice("bovw_clusters", list(space.bovw_clusters))},
    }
    models = {
        "svm": {
            "name": "svm",
            "C": hp.choice("svm_C", list(space.svm_c)),
            "gamma": hp.choice("svm_gamma", list(space.svm_gamma)),
            "class_weight": hp.choice("svm_class_weight", _as_json(space.svm_class_weight)),
        },
        "rf": {
            "name": "rf",
            "n_estimators": hp.choice("rf_n_estimators", list(space.rf_n_estimators)),
            "max_features": hp.choice("rf_max_features", list(space.rf_max_features)),
            "max_depth": hp.choice("rf_max_depth", list(space.rf_max_depth)),
            "class_weight": hp.choice("rf_class_weight", _as_json(space.rf_class_weight)),
        },
    }
    return {
        "extractor": hp.choice("extractor", [extractors[name] for name in space.extractors]),
        "model": hp.choice("model", [models[name] for name in space.models]),
    }


class FeatureCache:
    """Train and validation features per extractor configuration.

    Kept in memory and, when ``directory`` is given, in ``<directory>/<key>.npz``
    so that a resumed search does not recompute them either.
    """

    def __init__(self, X_train, y_train, X_val, directory=None, random_state=0, n_jobs=None):
        self.X_train, self.y_train, self.X_val = X_train, y_train, X_val
        self.directory = None if directory is None else Path(directory)
        self.random_state, self.n_jobs = random_state, n_jobs
        self._memory = {}
        self.n_computed = 0

    def key(self, extractor_config):
        text = json.dumps([extractor_config, self.random_state], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def get(self, extractor_config):
        """(train features, validation features) of an extractor configuration."""
        key = self.key(extractor_config)
        if key in self._memory:
            return self._memory[key]
        path = None if self.directory is None else self.directory / f"{key}.npz"
        if path is not None and path.exists():
            with np.load(path) as stored:
                features = (stored["train"], stored["val"])
        else:
            extractor = build_extractor(extractor_config, self.random_state, self.n_jobs)
            features = (extractor.fit_transform(self.X_train, self.y_train), extractor.transform(self.X_val))
            self.n_computed += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(path) as fh:
                    np.savez(fh, train=features[0], val=features[1])
        self._memory[key] = features
        return features


def _objective(cache, y_val, random_state, n_jobs):
    def objective(config):
        config = _as_json(config)
        start = time.perf_counter()
        try:
            F_train, F_val = cache.get(config["extractor"])
        except ValueError as exc:  # e.g. too few SIFT descriptors for the vocabulary
            return {"status": STATUS_FAIL, "config": config, "error": str(exc)}
        model = make_pipeline(StandardScaler(), build_classifier(config["model"], random_state, n_jobs))
        model.fit(F_train, cache.y_train)
        accuracy = float(accuracy_score(y_val, model.predict(F_val)))
        return {
            "status": STATUS_OK,
            "loss": 1.0 - accuracy,
            "val_accuracy": accuracy,
            "config": config,
            "seconds": time.perf_counter() - start,
        }

    return objective


def _save_trials(path, state):
    with atomic_write(path) as f:
        pickle.dump(state, f)


def _load_trials(path, state):
    with open(path, "rb") as f:
        saved = pickle.load(f)
    for name in ("space", "seed"):
        if saved[name] != state[name]:
            raise ValueError(f"{path}: saved search has another {name}; resume it with the same settings")
    return saved["trials"]


@dataclass
class SearchResult:
    """Outcome of :func:`search_classic`."""

    best_config: dict
    best_val_accuracy: float
    model: object
    trials: Trials
    n_features_computed: int
    metrics: dict


def best_trial(trials):
    """The successful trial of highest validation accuracy (earliest on ties)."""
    done = [t["result"] for t in trials.trials if t["result"].get("status") == STATUS_OK]
    if not done:
        raise ValueError("no evaluation succeeded; see the trials' errors")
    best = max(done, key=lambda result: result["val_accuracy"])
    return {**best, "config": _as_json(best["config"])}


def search_classic(
    X_train,
    y_train,
    X_val,
    y_val,
    *,
    max_evals,
    out_dir,
    space=TABLE8,
    resume=False,
    random_state=0,
    n_jobs=None,
    progress=True,
    test=None,
):
    """Hyperopt TPE search of extractor + classifier, trained on train and scored on val.

    Parameters
    ----------
    X_train, y_train : ndarray
        Training images (n, height, width) and labels 0..4.
    X_val, y_val : ndarray
        Validation images and labels; the search maximises accuracy on them.
    max_evals : int
        Total number of evaluations, counting those of a resumed search.
    out_dir : path-like
        Folder for ``trials.pkl`` (rewritten after every evaluation), the
        feature cache ``features/`` and the refitted best model
        ``best_model.dfm`` (a diffranet model file) with ``best_model.dfm.json``.
    space : ClassicSpace, default=TABLE8
        Search space.
    resume : bool, default=False
        Continue the trials saved in ``out_dir``. Without it an existing
        ``trials.pkl`` is an error, so that nothing is overwritten.
    random_state : int, default=0
        Seeds TPE (evaluation ``i`` draws from seed ``(random_state, i)``, so a
        resumed search proposes what an uninterrupted one would), the BoVW
        vocabularies and the classifiers.
    n_jobs : int or None, default=None
        Parallel workers for feature extraction and random forests.
    progress : bool, default=True
        Show a progress bar.
    test : tuple of ndarray, optional
        ``(X_test, y_test)``: the refitted best model is also scored on them
        (never used to choose it).

    Returns
    -------
    SearchResult
        With ``metrics``: :func:`~diffranet.training.metrics.split_scores` on
        ``"val"`` (and ``"test"``), and ``"n_evals"``; they are also saved in
        ``best_model.dfm.json``.
    """
    max_evals = check_int("max_evals", max_evals, minimum=1)
    random_state = check_seed("random_state", random_state)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials_path = out_dir / TRIALS_FILE
    state = {"space": space.to_dict(), "seed": random_state, "trials": Trials()}
    if trials_path.exists():
        if not resume:
            raise FileExistsError(f"{trials_path} exists: resume that search or choose another output folder")
        state["trials"] = _load_trials(trials_path, state)
    elif resume:
        raise FileNotFoundError(f"{trials_path}: no saved search to resume")
    trials = state["trials"]

    cache = FeatureCache(X_train, y_train, X_val, out_dir / "features", random_state, n_jobs)
    objective = _objective(cache, y_val, random_state, n_jobs)
    expression = hyperopt_space(space)
    with tqdm(total=max_evals, initial=len(trials.trials), desc="hyperopt", disable=not progress) as bar:
        for i in range(len(trials.trials), max_evals):
            fmin(
                objective,
                expression,
                algo=tpe.suggest,
                max_evals=i + 1,
                trials=trials,
                rstate=np.random.default_rng([random_state, i]),
                show_progressbar=False,
                return_argmin=False,
            )
            _save_trials(trials_path, state)
            bar.update(1)

    best = best_trial(trials)
    model = build_pipeline(best["config"], random_state, n_jobs).fit(X_train, y_train)
    metrics = {"val": split_scores(model, X_val, y_val), "n_evals": len(trials.trials)}
    if test is not None:
        metrics["test"] = split_scores(model, *test)
    save_model(model, out_dir / MODEL_FILE, best["config"], metrics)
    return SearchResult(best["config"], best["val_accuracy"], model, trials, cache.n_computed, metrics)


#: The name of :func:`search_classic` in the paper's reproduction plan (Table 8's Hyperopt search).
hyperopt_search = search_classic
