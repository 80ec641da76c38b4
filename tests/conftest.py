"""Fixtures shared by the test files."""

import numpy as np
import pytest

from lstm_fast import ops


@pytest.fixture(params=ops.supported_isas())
def isa(request):
    """Runs the test once on every ISA path this CPU supports, restoring the path after."""
    before = ops.get_isa()
    ops.set_isa(request.param)
    yield request.param
    ops.set_isa(before)


def uses_team(B, I, H, dtype=np.float32, **kw):  # noqa: N803
    """Whether the time loop at these sizes asks for two threads when given two
    (_engine._loop_threads): a test of what threads change must make them run.
    A second thread splits a step's blocks only where it pays (one meeting per
    step), so small layers at small batches run on one; inference at batch
    1-2 also counts the call's steps, so its tests pass T= (default 1)."""
    from lstm_fast import _engine

    return _engine._loop_threads(B, I, H, dtype, n_threads=2, **kw) == 2


@pytest.fixture
def sample_model_runs():
    """run(layers, y_shape, probe): compiles Sequential(layers), then fit,
    predict and evaluate on 8 samples (3 steps, 4 features) in batches of 4,
    calling probe() at the end of every batch; returns {phase: [values]}."""
    from lstm_fast.callbacks import LambdaCallback
    from lstm_fast.models import Sequential

    def run(layers, y_shape, probe):
        seen = {}

        def note(phase):
            return lambda batch, logs: seen.setdefault(phase, []).append(probe())

        cb = LambdaCallback(on_train_batch_end=note("fit"), on_predict_batch_end=note("predict"),
                            on_test_batch_end=note("evaluate"))
        m = Sequential(layers)
        m.compile(optimizer="sgd", loss="mse")
        x, y = np.zeros((8, 3, 4)), np.zeros(y_shape)
        m.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[cb])
        m.predict(x, batch_size=4, verbose=0, callbacks=[cb])
        m.evaluate(x, y, batch_size=4, verbose=0, callbacks=[cb])
        assert set(seen) == {"fit", "predict", "evaluate"}, seen
        return seen

    return run
