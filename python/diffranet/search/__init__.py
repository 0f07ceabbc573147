"""Hyper-parameter searches: Hyperopt TPE over the classic extractor + classifier space."""

from .classic import SearchResult, best_trial, hyperopt_search, hyperopt_space, search_classic
from .spaces import PAPER_BEST, TABLE8, ClassicSpace, default_configuration

__all__ = [
    "PAPER_BEST",
    "TABLE8",
    "ClassicSpace",
    "SearchResult",
    "best_trial",
    "default_configuration",
    "hyperopt_search",
    "hyperopt_space",
    "search_classic",
]
