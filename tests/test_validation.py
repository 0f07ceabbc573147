"""The shared parameter checks of diffranet._validation that give names one meaning."""

import joblib
import numpy as np
import pytest

from diffranet._validation import check_threads, threads_for_jobs


class TestCheckThreads:
    def test_none_is_every_core(self):
        # the compiled core reads 0 as "every core"
        assert check_threads(None) == 0

    @pytest.mark.parametrize("value", [1, 3, np.int64(2)])
    def test_a_count(self, value):
        assert check_threads(value) == int(value) and type(check_threads(value)) is int

    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
    def test_refused(self, value):
        with pytest.raises(ValueError, match="n_threads"):
            check_threads(value)


class TestThreadsForJobs:
    def test_joblib_counting(self):
        cores = joblib.cpu_count()  # joblib's count of usable cores (it respects CPU limits)
        assert threads_for_jobs(None) == 1 and threads_for_jobs(2) == 2
        assert threads_for_jobs(-1) == cores and threads_for_jobs(-2) == max(cores - 1, 1)

    def test_never_more_than_the_usable_cores(self):
        assert threads_for_jobs(10 * joblib.cpu_count()) == joblib.cpu_count()


class TestFrozenValues:
    """LabelRule and PeakFinderSettings are values: validated once, never changed afterwards."""

    @pytest.mark.parametrize("make, field", [
        (lambda: __import__("diffranet.dataset.labels", fromlist=["LabelRule"]).LabelRule(), "weak_min"),
        (lambda: __import__("diffranet.peaks.finder", fromlist=["PeakFinderSettings"]).PeakFinderSettings(),
         "min_snr"),
    ])
    def test_fields_cannot_change(self, make, field):
        import copy
        import dataclasses
        import pickle

        value = make()
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(value, field)
        for again in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
            assert getattr(again, field) == getattr(value, field)
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(again, field, 1)
