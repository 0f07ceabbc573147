"""Search spaces of the classic classifiers, as data.

:data:`TABLE8` is the space of the paper's Appendix B, Table 8: a feature
extractor (GLCM, LBP or SIFT + BoVW) chosen jointly with a classifier (SVM or
random forest), each with its hyper-parameters. :data:`PAPER_BEST` holds the
best configurations the paper reports (Tables 3 and 4). A configuration is a
plain dict, stored as JSON next to a trained model::

    {"extractor": {"name": "glcm", "distances": [1, 2, 5, 8], "angles": [45, 135]},
     "model": {"name": "rf", "n_estimators": 100, "max_features": "sqrt",
               "max_depth": 20, "class_weight": None}}
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from itertools import combinations

from .._validation import check_choice

#: SVM C: 1 or 2**x for x in {-5, -3, ..., 13, 15}.
SVM_C = (1.0,) + tuple(2.0**x for x in range(-5, 16, 2))
#: SVM RBF gamma: 0 or 2**x for x in {-15, -13, ..., 1, 3}. The paper's 0 is
#: the old scikit-learn convention for 1 / n_features, now ``gamma="auto"``.
SVM_GAMMA = (0.0,) + tuple(2.0**x for x in range(-15, 4, 2))
#: Class weights: None, "balanced", or one weight per class from blank to strong.
CLASS_WEIGHTS = (
    None,
    "balanced",
    (0.35, 0.35, 0.1, 0.1, 0.1),
    (0.3, 0.3, 0.133, 0.133, 0.133),
    (0.25, 0.25, 0.166, 0.166, 0.166),
)


@dataclass(frozen=True)
class ClassicSpace:
    """Values of every hyper-parameter of the extractor + classifier search.

    Each field lists the values a hyper-parameter may take; GLCM distances and
    angles are searched as any non-empty combination of the listed values.
    Smaller spaces (fewer values, or fewer extractors and models) serve tests
    and quick runs.
    """

    extractors: tuple = ("glcm", "lbp", "bovw")
    models: tuple = ("svm", "rf")
    glcm_distances: tuple = (1, 2, 4, 5, 8)
    glcm_angles: tuple = (0, 45, 90, 135)
    lbp_points: tuple = (4, 8, 16, 24)
    lbp_radius: tuple = (0, 1, 2, 3)
    bovw_clusters: tuple = (10, 25, 50, 100, 250, 500, 1000, 5000)
    svm_c: tuple = SVM_C
    svm_gamma: tuple = SVM_GAMMA
    svm_class_weight: tuple = CLASS_WEIGHTS
    rf_n_estimators: tuple = (10, 100, 1000)
    rf_max_features: tuple = ("sqrt", 0.25, 0.5, 0.75)
    rf_max_depth: tuple = (None, 2, 4, 6, 8, 10, 20)
    rf_class_weight: tuple = CLASS_WEIGHTS

    def __post_init__(self):
        for name, values in asdict(self).items():
            if len(values) == 0:
                raise ValueError(f"{name} must list at least one value")
        for name in ("extractors", "models"):
            allowed = {"extractors": ("glcm", "lbp", "bovw"), "models": ("svm", "rf")}[name]
            unknown = set(getattr(self, name)) - set(allowed)
            if unknown:
                raise ValueError(f"{name} must be among {allowed}, got {sorted(unknown)}")

    def to_dict(self):
        """The space as JSON-compatible lists."""
        return {name: list(values) for name, values in asdict(self).items()}


def non_empty_subsets(values):
    """Every non-empty combination of ``values``, as sorted lists.

    Examples
    --------
    >>> non_empty_subsets([0, 90])
    [[0], [90], [0, 90]]
    """
    values = sorted(values)
    return [list(c) for k in range(1, len(values) + 1) for c in combinations(values, k)]


#: The paper's search space (Appendix B, Table 8).
TABLE8 = ClassicSpace()

#: Best configurations reported by the paper on the DiffraNet validation set:
#: GLCM with RF or SVM (Table 3), and the best LBP and SIFT runs (Table 4,
#: classifiers there as in Table 3).
PAPER_BEST = {
    ("glcm", "rf"): {
        "extractor": {"name": "glcm", "distances": [1, 2, 5, 8], "angles": [45, 135]},
        "model": {"name": "rf", "n_estimators": 100, "max_features": "sqrt", "max_depth": 20, "class_weight": None},
    },
    ("glcm", "svm"): {
        "extractor": {"name": "glcm", "distances": [1, 5, 8], "angles": [0, 90, 135]},
        "model": {"name": "svm", "C": 32.0, "gamma": 0.5, "class_weight": [0.25, 0.25, 0.166, 0.166, 0.166]},
    },
    ("lbp", "svm"): {
        "extractor": {"name": "lbp", "n_points": 24, "radius": 3},
        "model": {"name": "svm", "C": 32.0, "gamma": 0.5, "class_weight": [0.25, 0.25, 0.166, 0.166, 0.166]},
    },
    ("bovw", "rf"): {
        "extractor": {"name": "bovw", "n_clusters": 25},
        "model": {"name": "rf", "n_estimators": 100, "max_features": "sqrt", "max_depth": 20, "class_weight": None},
    },
}


def default_configuration(features, model):
    """Configuration used by ``diffranet train``: the paper's best for the pair.

    For the pairs the paper does not report (LBP + RF, SIFT + SVM) the
    extractor of the reported pair is combined with the classifier settings of
    Table 3.
    """
    check_choice("features", features, {"glcm", "lbp", "bovw"})
    check_choice("model", model, {"rf", "svm"})
    if (features, model) in PAPER_BEST:
        return copy.deepcopy(PAPER_BEST[(features, model)])
    extractor = next(c["extractor"] for (f, _), c in PAPER_BEST.items() if f == features)
    classifier = PAPER_BEST[("glcm", model)]["model"]
    return copy.deepcopy({"extractor": extractor, "model": classifier})
