"""Outcome counts of a property test, so that a property cannot pass on refusals alone.

A property such as "a corrupt file gives an image or a ValueError" also holds
for a reader that raises ValueError for everything. :class:`Outcomes` counts
what each example gave (and reports it as a hypothesis ``event``, shown by
``--hypothesis-show-statistics``); the test then requires a share of real
results among the examples.
"""

import collections

from hypothesis import event

REFUSED = "ValueError"


class Outcomes:
    """Counts of the outcomes of one property's examples."""

    def __init__(self):
        self.counts = collections.Counter()

    def record(self, outcome, detail=""):
        """Count one example's ``outcome`` (``REFUSED`` or the name of a real result)."""
        event(f"{detail}: {outcome}" if detail else outcome)
        self.counts[outcome] += 1

    def share(self, outcome):
        """Fraction of the recorded examples that gave ``outcome`` (0 without examples)."""
        total = sum(self.counts.values())
        return self.counts[outcome] / total if total else 0.0

    def require(self, outcome, minimum_share):
        """Fail unless at least ``minimum_share`` of the examples (and at least one) gave ``outcome``."""
        assert self.counts[outcome] >= 1 and self.share(outcome) >= minimum_share, (
            f"{self.counts[outcome]} of {sum(self.counts.values())} examples gave {outcome}, fewer than "
            f"{100 * minimum_share:.0f} %: {dict(self.counts)}")
