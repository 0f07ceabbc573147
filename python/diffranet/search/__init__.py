"""Hyper-parameter searches: Hyperopt TPE over the classic extractor + classifier space."""

from .spaces import PAPER_BEST, TABLE8, ClassicSpace, default_configuration

#: Names of the Hyperopt search (:mod:`.classic`), imported when first used: Hyperopt is in the
#: ``diffranet[search]`` extra, and the paper's configurations (:mod:`.spaces`) need none of it.
_CLASSIC = ("SearchResult", "best_trial", "hyperopt_search", "hyperopt_space", "search_classic")


def __getattr__(name):
    if name in _CLASSIC:
        # needs hyperopt (diffranet[search]): imported only when the search is used
        from . import classic

        return getattr(classic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
