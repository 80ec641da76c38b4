"""The NumPy reference against independent values: central finite differences
(float64) for every gradient, and golden numbers from hand computation."""

import numpy as np
import pytest

from lstm_fast import reference as ref

FD_STEP = 1e-6
FD_RTOL = 1e-6  # central differences in float64 are good to ~1e-8 relative here
FD_ATOL = 1e-8


def _problem(B, T, I, H, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((B, T, I)),
        kernel=rng.standard_normal((I, 4 * H)) * 0.5,
        recurrent_kernel=rng.standard_normal((H, 4 * H)) * 0.5,
        bias=rng.standard_normal(4 * H) * 0.5,
        h0=rng.standard_normal((B, H)) * 0.5,
        c0=rng.standard_normal((B, H)) * 0.5,
    )


def _loss(arrays, options, proj):
    """A scalar that depends on every output: random projections of y, h_T, c_T."""
    y, h, c, _ = ref.lstm_forward(**arrays, **options)
    return float((y * proj["y"]).sum() + (h * proj["h"]).sum() + (c * proj["c"]).sum())


OPTIONS = [
    dict(),
    dict(go_backwards=True),
    dict(return_sequences=False),
    dict(lengths=np.array([3, 0, 1])),
    dict(lengths=np.array([2, 4, 1]), go_backwards=True, zero_output_for_mask=True),
    dict(lengths=np.array([4, 2, 3]), return_sequences=False, go_backwards=True),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(sorted(o)) or "plain")
def test_gradients_match_finite_differences(options):
    B, T, I, H = 3, 4, 2, 3
    arrays = _problem(B, T, I, H)
    rng = np.random.default_rng(1)
    y, h, c, cache = ref.lstm_forward(**arrays, **options, training=True)
    proj = {"y": rng.standard_normal(y.shape), "h": rng.standard_normal(h.shape),
            "c": rng.standard_normal(c.shape)}
    grads = ref.lstm_backward(cache, dy=proj["y"], dh_T=proj["h"], dc_T=proj["c"])
    analytic = {"x": grads.dx, "kernel": grads.dkernel,
                "recurrent_kernel": grads.drecurrent_kernel, "bias": grads.dbias,
                "h0": grads.dh0, "c0": grads.dc0}
    for name, g in analytic.items():
        numeric = np.zeros_like(arrays[name])
        for idx in np.ndindex(arrays[name].shape):
            plus = {k: v.copy() for k, v in arrays.items()}
            minus = {k: v.copy() for k, v in arrays.items()}
            plus[name][idx] += FD_STEP
            minus[name][idx] -= FD_STEP
            numeric[idx] = (_loss(plus, options, proj) - _loss(minus, options, proj)) / (
                2 * FD_STEP)
        np.testing.assert_allclose(g, numeric, rtol=FD_RTOL, atol=FD_ATOL, err_msg=name)


def test_golden_single_unit():
    # One unit, one input, constant weights 0.5, x = 1, two steps, by hand:
    # z = 0.5 + 0.5 h + 0.5; i = f = o = sigmoid(z), g = tanh(z), c = f c + i g, h = o tanh(c)
    def sig(v):
        return 1 / (1 + np.exp(-v))

    h = c = 0.0
    expected = []
    for _ in range(2):
        z = 1.0 + 0.5 * h
        c = sig(z) * c + sig(z) * np.tanh(z)
        h = sig(z) * np.tanh(c)
        expected.append(h)
    y, hT, cT, _ = ref.lstm_forward(np.ones((1, 2, 1)), np.full((1, 4), 0.5), np.full((1, 4), 0.5),
                                    np.full(4, 0.5))
    np.testing.assert_allclose(y[0, :, 0], expected, rtol=1e-15)
    # and the first value as a literal: z = 1, c = s(1) tanh(1), h = s(1) tanh(c)
    assert abs(y[0, 0, 0] - 0.3696063529) < 1e-9
    np.testing.assert_allclose(cT[0, 0], c, rtol=1e-15)


def test_masked_steps_carry_state():
    arrays = _problem(2, 5, 3, 4)
    y, h, c, _ = ref.lstm_forward(**arrays, lengths=np.array([2, 5]))
    y2, h2, c2, _ = ref.lstm_forward(**{k: (v[:1, :2] if k == "x" else v[:1])
                                        for k, v in arrays.items() if k in ("x", "h0", "c0")},
                                     kernel=arrays["kernel"],
                                     recurrent_kernel=arrays["recurrent_kernel"],
                                     bias=arrays["bias"])
    np.testing.assert_allclose(h[0], h2[0], rtol=1e-15)
    np.testing.assert_allclose(c[0], c2[0], rtol=1e-15)
    np.testing.assert_allclose(y[0, 2:], np.broadcast_to(h2[0], (3, 4)), rtol=1e-15)
