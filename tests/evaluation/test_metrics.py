"""diffranet.evaluation.metrics against hand-computed answers and scikit-learn."""

import doctest
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from diffranet.evaluation import metrics as m

# A hand-made case: 10 frames of the five classes (0 blank .. 4 strong).
Y_TRUE = [0, 0, 1, 1, 2, 2, 2, 3, 4, 4]
Y_PRED = [0, 1, 1, 2, 2, 2, 3, 3, 3, 4]


def test_doctests():
    result = doctest.testmod(m)
    assert result.attempted >= 10 and result.failed == 0


class TestConfusionMatrix:
    def test_hand_computed(self):
        assert m.confusion_matrix(Y_TRUE, Y_PRED, 5).tolist() == [
            [1, 1, 0, 0, 0],
            [0, 1, 1, 0, 0],
            [0, 0, 2, 1, 0],
            [0, 0, 0, 1, 0],
            [0, 0, 0, 1, 1],
        ]

    def test_rows_are_true_class_like_sklearn(self):
        rng = np.random.default_rng(0)
        y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
        np.testing.assert_array_equal(m.confusion_matrix(y, p, 5), skm.confusion_matrix(y, p, labels=range(5)))

    @pytest.mark.parametrize("y_true, y_pred, n", [([0, 5], [0, 1], 5), ([0, -1], [0, 1], 5), ([0.5], [0], 5),
                                                   ([0, 1], [0], 5), ([[0]], [[0]], 5), ([0], [0], 0)])
    def test_bad_input(self, y_true, y_pred, n):
        with pytest.raises(ValueError):
            m.confusion_matrix(y_true, y_pred, n)


class TestAccuracyPrecisionRecall:
    def test_hand_computed(self):
        matrix = m.confusion_matrix(Y_TRUE, Y_PRED, 5)
        assert m.accuracy(matrix) == 0.6
        precision, recall, support = m.precision_recall(matrix)
        np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 1 / 3, 1])
        np.testing.assert_allclose(recall, [1 / 2, 1 / 2, 2 / 3, 1, 1 / 2])
        assert support.tolist() == [2, 2, 3, 1, 2]

    def test_undefined_values_are_nan(self):
        precision, recall, _ = m.precision_recall([[2, 0, 0], [1, 0, 0], [0, 0, 0]])
        assert math.isnan(precision[1]) and math.isnan(recall[2]) and not math.isnan(recall[1])
        assert math.isnan(m.accuracy(np.zeros((2, 2), int)))

    @pytest.mark.parametrize("matrix", [[[1, 2]], [[1.5, 0], [0, 1]], [[-1, 0], [0, 1]]])
    def test_bad_matrix(self, matrix):
        with pytest.raises(ValueError):
            m.precision_recall(matrix)


class TestHitMiss:
    def test_hand_computed(self):
        hit_true = np.isin(Y_TRUE, (2, 3, 4))
        hit_pred = np.isin(Y_PRED, (2, 3, 4))
        # true misses 0,0,1,1 -> predicted miss, miss, miss, hit; hits all predicted hits
        assert m.hitmiss_confusion(hit_true, hit_pred).tolist() == [[3, 1], [0, 6]]
        point = m.operating_point(hit_true, hit_pred)
        assert point == {"fpr": 0.25, "tpr": 1.0, "recall": 1.0, "precision": 6 / 7}

    def test_flags_must_be_bool(self):
        with pytest.raises(ValueError, match="bool"):
            m.hitmiss_confusion([0, 1], [0, 1])


class TestCurves:
    def test_roc_and_pr_match_sklearn(self):
        rng = np.random.default_rng(1)
        hit = rng.random(400) < 0.4
        score = np.round(rng.random(400) + 0.5 * hit, 2)  # ties included
        roc = m.roc_points(hit, score)
        fpr, tpr, _ = skm.roc_curve(hit, score, drop_intermediate=False)
        np.testing.assert_allclose(roc["fpr"], fpr)
        np.testing.assert_allclose(roc["tpr"], tpr)
        assert roc["auc"] == pytest.approx(skm.roc_auc_score(hit, score), abs=1e-12)
        pr = m.pr_points(hit, score)
        assert pr["average_precision"] == pytest.approx(skm.average_precision_score(hit, score), abs=1e-12)
        precision, recall, _ = skm.precision_recall_curve(hit, score, drop_intermediate=False)
        np.testing.assert_allclose(pr["precision"], precision[:-1][::-1])
        np.testing.assert_allclose(pr["recall"], recall[:-1][::-1])

    def test_perfect_separation(self):
        roc = m.roc_points([False, False, True], [0.1, 0.2, 0.9])
        assert roc["auc"] == 1.0 and roc["fpr"][0] == 0 and roc["tpr"][-1] == 1
        assert m.pr_points([False, False, True], [0.1, 0.2, 0.9])["average_precision"] == 1.0

    def test_one_class_only_gives_nan_auc(self):
        assert math.isnan(m.roc_points([True, True], [0.2, 0.9])["auc"])
        assert math.isnan(m.pr_points([False, False], [0.2, 0.9])["average_precision"])

    def test_bad_scores(self):
        with pytest.raises(ValueError):
            m.roc_points([True, False], [0.5, np.nan])
        with pytest.raises(ValueError):
            m.pr_points([True, False], [0.5])


class TestQuantity:
    def test_bins_cover_every_value(self):
        values = np.array([0, 0, 1, 2, 9, 10, 99, 100, 1000, 3999])
        bins = m.quantity_bins(values)
        assert bins[0] == (0, 0) and bins[-1][1] == 3999
        assert all(lo <= hi for lo, hi in bins)
        assert all(b[1] + 1 == c[0] for b, c in zip(bins, bins[1:]))  # contiguous, no overlap

    def test_accuracy_by_quantity_hand_computed(self):
        correct = np.array([True, True, False, True, False, False])
        spots = np.array([0, 0, 3, 5, 50, 70])
        count, acc = m.accuracy_by_quantity(correct, spots, [(0, 0), (1, 9), (10, 99), (100, 999)])
        assert count.tolist() == [2, 2, 2, 0]
        assert acc[:3].tolist() == [1.0, 0.5, 0.0] and math.isnan(acc[3])

    @pytest.mark.parametrize("values", [[-1, 2], [0.5, 2], [[1, 2]]])
    def test_bad_quantity(self, values):
        with pytest.raises(ValueError):
            m.quantity_bins(values)
