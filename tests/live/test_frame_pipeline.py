"""The pipeline every source feeds: records in sequence order, room in flight, abstention in every worker."""

import itertools
import logging
import threading

import numpy as np
import pytest

from diffranet.classes import CLASS_NAMES, is_hit_name
from diffranet.inference import VerdictRule
from diffranet.live.files import feed_frames
from diffranet.live.frames import Frame
from diffranet.live.frames import LimitedLog
from diffranet.live.pipeline import FramePipeline, InFlight
from diffranet.live.processing import FrameClassifier
from live.harness import frames_with_spots


def _run(model, frames, **kwargs):
    records = []
    pipeline = FramePipeline(model, records.append, **kwargs).start()
    try:
        feed_frames(pipeline, frames, itertools.count())
    finally:
        pipeline.finish()
    return records


@pytest.mark.parametrize("workers", [1, 2])
def test_records_follow_the_frames_with_the_classifiers_verdicts(model, model_path, workers):
    data = frames_with_spots(7, seed=5)
    frames = [Frame({"id": i}, frame) for i, frame in enumerate(data)]
    records = _run(model if workers == 1 else model_path, frames, workers=workers, batch_size=3, queue_size=2)
    expected = FrameClassifier(model).classify(frames)
    assert [r["id"] for r in records] == list(range(7))
    assert [{k: r[k] for k in ("label", "hit", "proba", "n_peaks")} for r in records] == [
        {k: e[k] for k in ("label", "hit", "proba", "n_peaks")} for e in expected]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_verdict_rule_reaches_every_worker(model, model_path, workers):
    frames = [Frame({"id": i}, frame) for i, frame in enumerate(frames_with_spots(3, seed=6))]
    source = model if workers == 1 else model_path
    records = _run(source, frames, workers=workers, rule=VerdictRule(abstain=1.0))
    assert [r["label"] for r in records] == ["uncertain"] * 3 and all(r["uncertain"] for r in records)
    # at a threshold above every frame's hit probability, none is a hit
    highest = max(sum(p for p, name in zip(r["proba"], CLASS_NAMES) if is_hit_name([name])[0]) for r in records)
    strict = _run(source, frames, workers=workers, rule=VerdictRule(hit_threshold=min(highest + 1e-6, 0.999999)))
    assert not any(r["hit"] for r in strict)


def test_room_in_flight_is_bounded_and_given_back(model):
    budget = InFlight(max_frames=2, max_bytes=100)
    assert budget.acquire(60) and not budget.acquire(60)  # over the bytes
    assert budget.acquire(40) and not budget.acquire(1)    # over the frames
    released = threading.Timer(0.05, budget.release, args=(60,))
    released.start()
    assert budget.acquire(10, give_up=lambda: False)     # waits for the room given back
    assert not budget.acquire(10, give_up=lambda: True)


@pytest.mark.parametrize("bad", [dict(workers=0), dict(peaks="all"), dict(input="photons"), dict(rule=0.5)])
def test_settings_are_checked(model, bad):
    with pytest.raises(ValueError):
        FramePipeline(model, print, **bad)


def test_workers_need_a_model_file(model):
    with pytest.raises(ValueError, match="file name or path"):
        FramePipeline(model, print, workers=2)



def test_a_frame_checked_finite_by_its_source_is_not_checked_again(model):
    data = frames_with_spots(1)[0].astype(np.float32)
    data[3, 5] = np.nan  # a file's pixel without data: masked by the file source, which sets `finite`
    unchecked, from_file = FrameClassifier(model).classify(
        [Frame(tags={}, data=data), Frame(tags={}, data=data, finite=True)])
    assert isinstance(unchecked, ValueError) and "non-finite" in str(unchecked)
    assert from_file["label"] in model.class_names  # the NaN is an ignored pixel, as in preprocess()


def test_the_finite_flag_reaches_worker_processes():
    from diffranet.live.parallel import _frame_from_parts, _frame_parts

    class Masks:
        def name(self, mask):
            return None

    class Part:
        def __init__(self, data):
            self.buffer = memoryview(bytes(data))

    for finite in (True, False):
        frame = Frame(tags={}, data=np.zeros((4, 4), np.float32), finite=finite)
        seq, back = _frame_from_parts([Part(p) for p in _frame_parts(3, frame, Masks())], Masks())
        assert seq == 3 and back.finite is finite


class TestLimitedLog:
    """A stream of bad messages becomes a few log lines and a count, never one line per message."""

    @staticmethod
    def limited(caplog, per_interval=3):
        now = [0.0]
        limited = LimitedLog(logging.getLogger("diffranet.test"), per_interval=per_interval, interval_s=10.0,
                             clock=lambda: now[0])
        caplog.set_level(logging.WARNING, logger="diffranet.test")
        return limited, now

    def test_lines_past_the_limit_are_counted_and_reported_when_the_interval_ends(self, caplog):
        limited, now = self.limited(caplog)
        for i in range(50):
            limited.warning("bad", "bad message %d", i)
        limited.warning("other", "another kind")  # a kind of its own
        assert [r.getMessage() for r in caplog.records] == ["bad message 0", "bad message 1", "bad message 2",
                                                            "another kind"]
        caplog.clear()
        now[0] = 12.0
        limited.warning("bad", "bad message %d", 50)
        assert [r.getMessage() for r in caplog.records] == ["47 more bad warnings in 12 s not shown",
                                                            "bad message 50"]

    def test_flush_reports_what_was_held_back_once(self, caplog):
        limited, now = self.limited(caplog, per_interval=1)
        for _ in range(4):
            limited.warning("bad", "bad message")
        now[0] = 2.0
        limited.flush()
        limited.flush()
        assert [r.getMessage() for r in caplog.records] == ["bad message", "3 more bad warnings in 2 s not shown"]


def test_a_pipeline_fed_bad_frames_logs_a_few_lines(model, caplog):
    caplog.set_level(logging.WARNING, logger="diffranet.live")
    bad = np.full((64, 64), np.nan, np.float32)
    records = _run(model, [Frame({"id": i}, bad) for i in range(40)], batch_size=8)
    assert len(records) == 40 and all("error" in r for r in records)
    lines = [r.getMessage() for r in caplog.records if r.name == "diffranet.live"]
    assert len(lines) <= 11 and lines[-1].startswith(f"{40 - (len(lines) - 1)} more ")


class _CountingModel:
    """Wraps a saved model and records the shapes of its predict_proba calls."""

    def __init__(self, model, fail=False):
        self.model, self.fail, self.calls = model, fail, []
        self.preprocessing, self.class_names = model.preprocessing, model.class_names

    def preprocess(self, *args, **kwargs):
        return self.model.preprocess(*args, **kwargs)

    def verdicts(self, proba):
        return self.model.verdicts(proba)

    def predict_proba(self, images):
        self.calls.append(np.asarray(images).shape)
        if self.fail and np.asarray(images).max() == 0:
            raise RuntimeError("cannot score a blank input")
        return self.model.predict_proba(images)


def test_the_pipeline_warms_the_model_up_before_the_first_frame(model):
    counting = _CountingModel(model)
    pipeline = FramePipeline(counting, lambda record: None).start()
    try:
        assert counting.calls == [(1, *model.preprocessing.shape)]  # one blank input, before any frame
    finally:
        pipeline.finish()


def test_a_failed_warm_up_is_logged_and_frames_still_classified(model, caplog):
    caplog.set_level(logging.WARNING, logger="diffranet.live")
    counting = _CountingModel(model, fail=True)
    records = _run(counting, [Frame({"id": 0}, frames_with_spots(1, seed=2)[0])])
    assert any("warm-up" in r.getMessage() for r in caplog.records)
    assert records[0]["label"] in model.class_names
