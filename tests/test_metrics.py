"""Metrics against known values (Keras's documented examples and hand counts)."""

import numpy as np
import pytest

from lstm_fast import metrics

TOL = 1e-12


def test_binary_accuracy_known_values():
    m = metrics.BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(0.75, abs=TOL)
    m.reset_state()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(0.5, abs=TOL)


def test_categorical_accuracy_known_values():
    m = metrics.CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5, abs=TOL)
    m.reset_state()
    m.update_state(
        [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3]
    )
    assert m.result() == pytest.approx(0.3, abs=TOL)


def test_sparse_categorical_accuracy_known_values():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5, abs=TOL)
    m.update_state(np.array([0, 0]), np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]]))
    assert m.result() == pytest.approx(0.5, abs=TOL)  # 2 right of 4


def test_mae_mse_accumulate_over_batches():
    rng = np.random.default_rng(0)
    t1, p1 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    t2, p2 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    mae, mse = metrics.get("mae"), metrics.get("mean_squared_error")
    for t, p in ((t1, p1), (t2, p2)):
        mae.update_state(t, p)
        mse.update_state(t, p)
    e = np.concatenate([p1 - t1, p2 - t2])
    assert mae.result() == pytest.approx(np.mean(np.abs(e)), rel=1e-14)
    assert mse.result() == pytest.approx(np.mean(e**2), rel=1e-14)
    assert mae.name == "mae" and mse.name == "mean_squared_error"


def test_sequence_metrics_are_per_sample_means():
    # y (N, 1) against (N, T, 1) predictions, as in the seed example
    y = np.array([[0.0], [1.0]])
    pred = np.array([[[0.0], [1.0], [2.0]], [[1.0], [1.0], [1.0]]])
    m = metrics.get("mae")
    m.update_state(y, pred)
    assert m.result() == pytest.approx(0.5, abs=TOL)  # sample means 1 and 0


@pytest.mark.parametrize(
    "y_true,y_pred,expected_cls,expected",
    [
        ([[1], [0], [1]], [[0.9], [0.2], [0.3]], metrics.BinaryAccuracy, 2 / 3),
        ([1, 0, 2], [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2]], None, 2 / 3),
        ([[1], [0], [2]], [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2]], None, 2 / 3),
        (
            [[0, 1, 0], [1, 0, 0], [0, 0, 1]],
            [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2]],
            metrics.CategoricalAccuracy,
            2 / 3,
        ),
    ],
)
def test_accuracy_resolves_by_shapes(y_true, y_pred, expected_cls, expected):
    m = metrics.get("accuracy")
    m.update_state(np.array(y_true), np.array(y_pred))
    expected_cls = expected_cls or metrics.SparseCategoricalAccuracy
    assert isinstance(m.resolved, expected_cls)
    assert m.name == "accuracy"
    assert m.result() == pytest.approx(expected, abs=TOL)
    m.reset_state()
    assert m.result() == 0.0


def test_acc_alias_keeps_its_name():
    assert metrics.get("acc").name == "acc"


def test_unknown_metric_lists_choices():
    with pytest.raises(ValueError, match="Unknown metric.*'accuracy'"):
        metrics.get("acuracy")


def test_function_metric_wrapped_in_mean():
    m = metrics.get(lambda t, p: np.abs(np.asarray(p) - np.asarray(t)).max(axis=-1))
    m.update_state(np.zeros((2, 2)), np.array([[1.0, 3.0], [2.0, 0.0]]))
    assert m.result() == pytest.approx(2.5, abs=TOL)
