"""BOHB search of DeepFreak's hyper-parameters (the paper's Table 10).

As in the paper (Section 4.3, Appendix C), BOHB (Falkner et al. 2018) searches
the ResNet topology adaptation and the SGD settings jointly, with budgets
measured in training epochs: configurations are trained for a few epochs,
the best third survive to three times the budget (``eta = 3``), and a
Bayesian model proposes new configurations from the results so far. Each
configuration is trained on the training split and scored by its accuracy on
the validation split (loss = 1 - accuracy).

The name server and the workers run on the loopback interface, in threads of
this process (PyTorch releases the GIL while it computes, so two workers use
two cores). Every finished evaluation is appended to ``OUT/configs.json`` and
``OUT/results.json`` (hpbandster's live-result format, one JSON value per
line), so an interrupted search resumes with ``resume=True``: the finished
evaluations warm-start BOHB's model and only the missing iterations run.

References
----------
S. Falkner, A. Klein, F. Hutter, "BOHB: robust and efficient hyperparameter
optimization at scale", Proc. ICML 2018, PMLR 80, 1437-1446.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .._validation import check_int, check_positive, check_seed
from ..models.deepfreak import DeepFreakClassifier
from ..models.topology import TOPOLOGIES

__all__ = ["TABLE10", "DeepFreakSpace", "SearchOutcome", "config_space", "deepfreak_params", "search_deepfreak"]

logger = logging.getLogger(__name__)

CONFIGS_FILE = "configs.json"
RESULTS_FILE = "results.json"
BEST_FILE = "best_config.json"


@dataclass(frozen=True)
class DeepFreakSpace:
    """Ranges of the DeepFreak search (the paper's Table 10 by default).

    Parameters
    ----------
    topologies : tuple of int
        Table 9 topology adaptations to choose from (1 to 13).
    learning_rate : (low, high)
        Initial SGD learning rate, searched on a log scale.
    momentum : (low, high)
        SGD momentum, searched uniformly.
    weight_decay : (low, high)
        L2 weight decay, searched uniformly.
    batch_sizes : tuple of int
        Images per SGD step.
    """

    topologies: tuple = tuple(range(1, 14))
    learning_rate: tuple = (1e-4, 10.0)
    momentum: tuple = (0.5, 1.0)
    weight_decay: tuple = (1e-5, 5e-5)
    batch_sizes: tuple = (4, 8, 16, 32, 64)

    def __post_init__(self):
        unknown = [t for t in self.topologies if t not in TOPOLOGIES or t == "default"]
        if not self.topologies or unknown:
            raise ValueError(f"topologies must be a non-empty subset of 1..13, got {self.topologies!r}")
        for name in ("learning_rate", "momentum", "weight_decay"):
            low, high = getattr(self, name)
            if not (0 < low < high and np.isfinite(high)):
                raise ValueError(f"{name} must be (low, high) with 0 < low < high, got {getattr(self, name)!r}")
        if self.momentum[1] > 1:
            raise ValueError(f"momentum must lie in (0, 1], got {self.momentum!r}")
        if not self.batch_sizes or any(int(b) != b or b < 1 for b in self.batch_sizes):
            raise ValueError(f"batch_sizes must be positive integers, got {self.batch_sizes!r}")


#: The paper's Table 10.
TABLE10 = DeepFreakSpace()


def config_space(space=TABLE10, seed=0):
    """The ConfigSpace of a :class:`DeepFreakSpace`, seeded for reproducible sampling."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=check_seed("seed", seed) % 2**32)
    cs.add(
        [
            CS.CategoricalHyperparameter("topology", [int(t) for t in space.topologies]),
            CS.UniformFloatHyperparameter("learning_rate", *map(float, space.learning_rate), log=True),
            # Momentum 1 is no SGD at all; the upper end stays just below it.
            CS.UniformFloatHyperparameter("momentum", float(space.momentum[0]), min(float(space.momentum[1]), 0.999)),
            CS.UniformFloatHyperparameter("weight_decay", *map(float, space.weight_decay)),
            CS.CategoricalHyperparameter("batch_size", [int(b) for b in space.batch_sizes]),
        ]
    )
    return cs


def _plain(value):
    """Numpy scalars (also inside dicts and lists) as Python values.

    hpbandster sends configurations and budgets through Pyro4, whose default
    serializer stalls without an error on numpy scalars (which ConfigSpace
    and hpbandster's budget grid produce under numpy 2).
    """
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def deepfreak_params(config, base_params=None):
    """Keyword arguments of :class:`~diffranet.DeepFreakClassifier` for one search configuration.

    The topology's settings (Table 9) come first, then the SGD settings of
    ``config``; ``base_params`` (depth, input size, threads, ...) override
    both, so a CPU search can keep, say, ``head_pool_size=None`` for small
    inputs.
    """
    params = dict(TOPOLOGIES[int(config["topology"])])
    params.update(
        learning_rate=float(config["learning_rate"]),
        momentum=float(config["momentum"]),
        weight_decay=float(config["weight_decay"]),
        batch_size=int(config["batch_size"]),
    )
    params.update(base_params or {})
    return params


def _check_base_params(space, base_params, seed):
    """Refuse settings DeepFreakClassifier does not take before any worker starts."""
    default = config_space(space, seed).get_default_configuration()
    try:
        DeepFreakClassifier(**deepfreak_params(default, base_params))._validate_params()
    except (TypeError, ValueError) as exc:  # unknown keyword, or scikit-learn's InvalidParameterError
        raise ValueError(f"base_params: {exc}") from None


def _make_worker_class():
    from hpbandster.core.worker import Worker

    class _DeepFreakWorker(Worker):
        """Trains one configuration for ``budget`` epochs and reports 1 - validation accuracy."""

        def __init__(self, data, base_params, seed, **kwargs):
            super().__init__(**kwargs)
            self.data = data
            self.base_params = base_params
            self.seed = seed

        def compute(self, config, budget, **kwargs):
            X_train, y_train, X_val, y_val = self.data
            epochs = max(1, int(round(budget)))
            params = deepfreak_params(config, self.base_params)
            params.update(epochs=epochs, random_state=self.seed)
            start = time.perf_counter()
            try:
                accuracy = float(DeepFreakClassifier(**params).fit(X_train, y_train).score(X_val, y_val))
            except (ValueError, FloatingPointError, RuntimeError) as exc:
                # A topology that does not fit the input size, or a learning rate that diverges.
                logger.warning("configuration %s failed: %s", config, exc)
                return {"loss": 1.0, "info": {"error": str(exc), "epochs": epochs}}
            if not np.isfinite(accuracy):
                accuracy = 0.0
            info = {"val_accuracy": accuracy, "epochs": epochs, "seconds": time.perf_counter() - start}
            return {"loss": 1.0 - accuracy, "info": _plain(info)}

    return _DeepFreakWorker


class _AppendLogger:
    """hpbandster result logger appending to one pair of files across resumed runs.

    A resumed run numbers its iterations from 0 again; ``offset`` shifts the
    iteration of every written id so that the files hold each evaluation once.
    """

    def __init__(self, directory, offset):
        self.config_path = Path(directory) / CONFIGS_FILE
        self.results_path = Path(directory) / RESULTS_FILE
        self.offset = offset
        self.seen = set()

    def _shift(self, config_id):
        return [config_id[0] + self.offset, *config_id[1:]]

    @staticmethod
    def _append(path, value):
        with open(path, "a") as fh:
            fh.write(json.dumps(_plain(value)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def new_config(self, config_id, config, config_info):
        if config_id not in self.seen:
            self.seen.add(config_id)
            self._append(self.config_path, [self._shift(config_id), config, config_info])

    def __call__(self, job):
        self.new_config(job.id, job.kwargs["config"], {})
        self._append(self.results_path, [self._shift(job.id), job.kwargs["budget"], job.timestamps, job.result,
                                         job.exception])


def _read_log(directory, max_budget):
    """(previous hpbandster Result or None, next iteration number, completed iterations)."""
    results = Path(directory) / RESULTS_FILE
    if not results.exists() or results.stat().st_size == 0:
        return None, 0, 0
    from hpbandster.core.result import logged_results_to_HBS_result

    iterations, complete = set(), set()
    with open(results) as fh:
        for line in fh:
            config_id, budget, _, result, _ = json.loads(line)
            iterations.add(config_id[0])
            if result is not None and np.isclose(budget, max_budget):
                complete.add(config_id[0])
    return logged_results_to_HBS_result(str(directory)), max(iterations) + 1, len(complete)


@dataclass
class SearchOutcome:
    """What a DeepFreak search found.

    Attributes
    ----------
    best_config : dict
        The configuration with the best validation accuracy at the largest
        budget evaluated.
    best_val_accuracy : float
    n_evaluations : int
        Evaluations logged in the output folder (all runs).
    out_dir : pathlib.Path
    """

    best_config: dict
    best_val_accuracy: float
    n_evaluations: int
    out_dir: Path


def _best(result):
    """Best configuration at the largest budget that has a successful run."""
    runs = [r for r in result.get_all_runs() if r.loss is not None]
    if not runs:
        raise RuntimeError("no configuration finished training")
    top_budget = max(r.budget for r in runs)
    best = min((r for r in runs if r.budget == top_budget), key=lambda r: r.loss)
    config = result.get_id2config_mapping()[best.config_id]["config"]
    return _plain(dict(config)), 1.0 - float(best.loss), len(runs)


def search_deepfreak(data, out_dir, *, min_budget=1, max_budget=50, eta=3, n_iterations=4, workers=1,
                     space=TABLE10, base_params=None, resume=False, seed=0):
    """Search DeepFreak's hyper-parameters with BOHB.

    Parameters
    ----------
    data : tuple (X_train, y_train, X_val, y_val)
        Training and validation images (n, H, W) and labels.
    out_dir : str or path-like
        Folder for the live results (``configs.json``, ``results.json``) and
        the best configuration (``best_config.json``).
    min_budget, max_budget : float, default 1 and 50
        Smallest and largest training budget, in epochs (the paper: 50).
    eta : int, default 3
        Successive-halving factor (the paper: 3).
    n_iterations : int, default 4
        BOHB iterations (successive-halving brackets) in all, counting those
        of a resumed search.
    workers : int, default 1
        Configurations trained at once (threads of this process).
    space : DeepFreakSpace, default TABLE10
    base_params : dict, optional
        DeepFreakClassifier settings that every configuration keeps (for
        example ``depth``, ``input_size``, ``num_threads``); they override the
        topology's.
    resume : bool, default False
        Continue the search logged in ``out_dir``; without it an existing log
        is an error.
    seed : int, default 0
        Seeds BOHB's sampling and every training run.

    Returns
    -------
    SearchOutcome
    """
    check_positive("min_budget", min_budget)
    check_positive("max_budget", max_budget)
    if min_budget > max_budget:
        raise ValueError(f"min_budget ({min_budget}) must not exceed max_budget ({max_budget})")
    check_int("eta", eta, minimum=2)
    check_int("n_iterations", n_iterations, minimum=1)
    check_int("workers", workers, minimum=1)
    seed = check_seed("seed", seed)
    X_train, y_train, X_val, y_val = data
    if len(X_train) == 0 or len(X_val) == 0:
        raise ValueError("the search needs training and validation images")

    _check_base_params(space, base_params, seed)

    import hpbandster.core.nameserver as hpns
    from hpbandster.optimizers import BOHB

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous, offset, complete = _read_log(out_dir, max_budget)
    if previous is not None and not resume:
        raise ValueError(f"{out_dir} already holds a search; resume it or choose another folder")
    remaining = n_iterations - complete

    class _ResumableBOHB(BOHB):
        # Iteration k of a resumed run plays bracket k + offset, so the bracket
        # sequence continues where the interrupted run stopped.
        def get_next_iteration(self, iteration, iteration_kwargs={}):  # noqa: B006 (hpbandster's signature)
            it = super().get_next_iteration(iteration + offset, iteration_kwargs)
            it.HPB_iter = iteration  # the master indexes its iterations by this
            return it

    run_id = f"diffranet-deepfreak-{os.getpid()}-{threading.get_ident()}"
    if remaining > 0:
        name_server = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)
        ns_host, ns_port = name_server.start()
        worker_class = _make_worker_class()
        pool = []
        optimizer = None
        try:
            for i in range(workers):
                worker = worker_class((X_train, y_train, X_val, y_val), base_params or {}, seed,
                                      nameserver=ns_host, nameserver_port=ns_port, run_id=run_id, id=i,
                                      logger=logging.getLogger(f"{__name__}.worker"))
                worker.run(background=True)
                pool.append(worker)
            optimizer = _ResumableBOHB(
                configspace=config_space(space, seed + offset),
                run_id=run_id, nameserver=ns_host, nameserver_port=ns_port,
                min_budget=float(min_budget), max_budget=float(max_budget), eta=eta,
                result_logger=_AppendLogger(out_dir, offset), previous_result=previous,
                logger=logging.getLogger(f"{__name__}.master"),
            )
            submit = optimizer.dispatcher.submit_job
            optimizer.dispatcher.submit_job = lambda job_id, **kwargs: submit(job_id, **_plain(kwargs))
            optimizer.run(n_iterations=remaining, min_n_workers=workers)
        finally:
            if optimizer is not None:
                optimizer.shutdown(shutdown_workers=True)
            else:
                for worker in pool:
                    worker.shutdown()
            name_server.shutdown()
            # Pyro4 leaves proxy sockets to the garbage collector: close them
            # here, quietly, rather than at some later, unrelated moment.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()

    from hpbandster.core.result import logged_results_to_HBS_result

    best_config, best_accuracy, n_runs = _best(logged_results_to_HBS_result(str(out_dir)))
    best = {"config": best_config, "val_accuracy": best_accuracy, "base_params": base_params or {},
            "params": deepfreak_params(best_config, base_params)}
    with atomic_write(out_dir / BEST_FILE, "w") as fh:
        fh.write(json.dumps(_plain(best), indent=2) + "\n")
    return SearchOutcome(best_config, best_accuracy, n_runs, out_dir)
