"""Optimizers: trajectories against hand-written Keras update rules, and torch.optim.

The oracle below applies Keras 3's formulas per variable, in float64, with a
plain loop over variables: written from the formulas, not from the flat code.
"""

import math

import numpy as np
import pytest

from lstm_fast import optimizers

RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}

SLICES = [(0, 6), (6, 3), (9, 1)]  # three variables: a (2, 3) kernel, a bias, a scalar


def _problem(seed=0, steps=6, n=10):
    rng = np.random.default_rng(seed)
    params = rng.normal(size=n)
    grads = [rng.normal(scale=2.0, size=n) for _ in range(steps)]
    return params, grads


def _split(vec):
    return [vec[o : o + s].copy() for o, s in SLICES]


def _clip(gs, clipnorm=None, clipvalue=None, global_clipnorm=None):
    if clipnorm is not None:
        return [g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm) for g in gs]
    if global_clipnorm is not None:
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
        return [g * min(1.0, global_clipnorm / norm) for g in gs]
    if clipvalue is not None:
        return [np.clip(g, -clipvalue, clipvalue) for g in gs]
    return gs


def keras_oracle(kind, params, grad_list, lr, **kw):
    """Run Keras's update rules per variable; returns the trajectory of params."""
    ws = _split(params)
    clip = {k: kw.pop(k) for k in ("clipnorm", "clipvalue", "global_clipnorm") if k in kw}
    wd = kw.pop("weight_decay", None)
    state = [dict() for _ in ws]
    traj = []
    for step, grad in enumerate(grad_list):
        gs = _clip(_split(grad), **clip)
        if wd is not None:
            ws = [w - w * wd * lr for w in ws]
        t = step + 1
        for k, (w, g, st) in enumerate(zip(ws, gs, state)):
            if kind == "sgd":
                mom, nesterov = kw.get("momentum", 0.0), kw.get("nesterov", False)
                if mom == 0:
                    w = w - lr * g
                else:
                    m = st.get("m", np.zeros_like(w))
                    m = m * mom - g * lr
                    st["m"] = m
                    w = w + (m * mom - g * lr if nesterov else m)
            elif kind == "adam":
                b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
                eps = kw.get("epsilon", 1e-7)
                m = st.get("m", np.zeros_like(w))
                v = st.get("v", np.zeros_like(w))
                m = m + (g - m) * (1 - b1)
                v = v + (g * g - v) * (1 - b2)
                st["m"], st["v"] = m, v
                if kw.get("amsgrad"):
                    st["vhat"] = np.maximum(st.get("vhat", np.zeros_like(w)), v)
                    v = st["vhat"]
                alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                w = w - m * alpha / (np.sqrt(v) + eps)
            elif kind == "rmsprop":
                rho, mom = kw.get("rho", 0.9), kw.get("momentum", 0.0)
                eps, centered = kw.get("epsilon", 1e-7), kw.get("centered", False)
                v = rho * st.get("v", np.zeros_like(w)) + (1 - rho) * g * g
                st["v"] = v
                if centered:
                    a = rho * st.get("a", np.zeros_like(w)) + (1 - rho) * g
                    st["a"] = a
                    denom = v - a * a + eps
                else:
                    denom = v + eps
                inc = lr * g / np.sqrt(denom)
                if mom > 0:
                    st["mom"] = mom * st.get("mom", np.zeros_like(w)) + inc
                    w = w - st["mom"]
                else:
                    w = w - inc
            elif kind == "adagrad":
                acc = st.get("acc", np.full_like(w, kw.get("initial_accumulator_value", 0.1)))
                acc = acc + g * g
                st["acc"] = acc
                w = w - lr * g / np.sqrt(acc + kw.get("epsilon", 1e-7))
            ws[k] = w
        traj.append(np.concatenate(ws))
    return traj


CASES = [
    ("sgd", optimizers.SGD, {}),
    ("sgd", optimizers.SGD, {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", optimizers.SGD, {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", optimizers.Adam, {}),
    ("adam", optimizers.Adam, {"learning_rate": 0.01, "beta_1": 0.8, "amsgrad": True}),
    ("adam", optimizers.AdamW, {"weight_decay": 0.004}),
    ("adam", optimizers.AdamW, {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("rmsprop", optimizers.RMSprop, {}),
    ("rmsprop", optimizers.RMSprop, {"momentum": 0.5, "centered": True, "rho": 0.8}),
    ("rmsprop", optimizers.RMSprop, {"momentum": 0.3}),
    ("adagrad", optimizers.Adagrad, {}),
    ("adagrad", optimizers.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.5}),
    ("adam", optimizers.Adam, {"clipnorm": 1.0}),
    ("sgd", optimizers.SGD, {"clipvalue": 0.5, "momentum": 0.5}),
    ("adam", optimizers.Adam, {"global_clipnorm": 1.5}),
    ("sgd", optimizers.SGD, {"weight_decay": 0.2, "learning_rate": 0.1}),
]

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001, "adagrad": 0.001}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,cls,kwargs", CASES)
def test_trajectory_matches_keras_rules(kind, cls, kwargs, dtype):
    params0, grads = _problem(steps=6)
    opt = cls(**kwargs)
    opt.build(SLICES, dtype)
    params = params0.astype(dtype)
    oracle_kw = {k: v for k, v in kwargs.items() if k != "learning_rate"}
    lr = kwargs.get("learning_rate", DEFAULT_LR[kind])
    expected = keras_oracle(kind, params0, grads, lr, **oracle_kw)
    for step, g in enumerate(grads):
        opt.apply(params, g.astype(dtype))
        np.testing.assert_allclose(
            params, expected[step], rtol=RTOL[dtype], atol=ATOL[dtype], err_msg=f"step {step}"
        )
    assert opt.iterations == len(grads)


def test_adam_first_step_golden():
    # at step 1, m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1, so the
    # update is lr * g / (|g| + eps / sqrt(0.001)) ~= lr * sign(g)
    opt = optimizers.Adam()
    opt.build([(0, 2)], np.float64)
    p = np.array([1.0, -1.0])
    opt.apply(p, np.array([2.0, -0.5]))
    eps_eff = 1e-7 / math.sqrt(0.001)
    np.testing.assert_allclose(
        p, [1.0 - 1e-3 * 2 / (2 + eps_eff), -1.0 + 1e-3 * 0.5 / (0.5 + eps_eff)], rtol=1e-14
    )


# Single steps of Keras 3 itself (learning_rate=0.5, w = [1, 2, 3, 4], g = [1, 6, 7, 2]),
# as Keras's test suite prints them (4 decimals).
KERAS_SINGLE_STEP = [
    (optimizers.SGD, [0.5, -1.0, -0.5, 3.0]),
    (optimizers.Adam, [0.5, 1.5, 2.5, 3.5]),
    (optimizers.RMSprop, [-0.5811, 0.4189, 1.4189, 2.4189]),
    (optimizers.Adagrad, [0.5233, 1.5007, 2.5005, 3.5061]),
]


@pytest.mark.parametrize("cls,expected", KERAS_SINGLE_STEP)
def test_single_step_matches_keras_numbers(cls, expected):
    opt = cls(learning_rate=0.5)
    opt.build([(0, 4)], np.float32)
    w = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    opt.apply(w, np.array([1.0, 6.0, 7.0, 2.0], np.float32))
    np.testing.assert_allclose(w, expected, atol=1e-4)


@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam, optimizers.RMSprop])
def test_weight_decay_matches_keras_number(cls):
    # three steps of decay 0.004 at learning rate 1 with zero gradients: 2 * 0.996**3
    w = np.array([2.0], np.float32)
    for _ in range(3):
        opt = cls(learning_rate=1.0, weight_decay=0.004)
        opt.build([(0, 1)], np.float32)
        opt.apply(w, np.zeros(1, np.float32))
    np.testing.assert_allclose(w, [1.9760959], atol=1e-6)


def test_clipping_numbers():
    for kwargs, expected in (
        ({"clipnorm": 1.0}, [2**0.5 / 2, 2**0.5 / 2]),
        ({"clipvalue": 1.0}, [1.0, 1.0]),
        ({"global_clipnorm": 1.0}, [2**0.5 / 2, 2**0.5 / 2]),
    ):
        opt = optimizers.SGD(learning_rate=1.0, **kwargs)
        opt.build([(0, 2)], np.float64)
        w = np.zeros(2)
        opt.apply(w, np.array([100.0, 100.0]))
        np.testing.assert_allclose(-w, expected, rtol=1e-14)


def test_rmsprop_rejects_bad_arguments():
    for kwargs in ({"rho": 1.1}, {"momentum": -0.1}, {"epsilon": 0.0}):
        with pytest.raises(ValueError, match="must be"):
            optimizers.RMSprop(**kwargs)


def test_defaults_are_keras():
    adam = optimizers.get("Adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (1e-3, 0.9, 0.999, 1e-7)
    assert optimizers.get("sgd").learning_rate == 0.01
    assert optimizers.get("adamw").weight_decay == 0.004
    rms = optimizers.get("RMSPROP")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon) == (1e-3, 0.9, 0.0, 1e-7)
    ada = optimizers.get("adagrad")
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (1e-3, 0.1, 1e-7)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="adam.*sgd"):
        optimizers.get("adamax_typo")


def test_only_one_clip_argument():
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


def test_unknown_kwarg_rejected():
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(lrate=0.1)


def test_learning_rate_settable_between_steps():
    opt = optimizers.SGD(learning_rate=0.1)
    opt.build([(0, 1)], np.float64)
    p = np.zeros(1)
    opt.apply(p, np.ones(1))
    opt.learning_rate = 0.5
    opt.apply(p, np.ones(1))
    np.testing.assert_allclose(p, [-0.6], rtol=1e-15)


def test_callable_learning_rate_gets_the_step():
    opt = optimizers.SGD(learning_rate=lambda step: 0.1 * (step + 1))
    opt.build([(0, 1)], np.float64)
    p = np.zeros(1)
    opt.apply(p, np.ones(1))
    opt.apply(p, np.ones(1))
    np.testing.assert_allclose(p, [-0.3], rtol=1e-15)


def test_params_updated_in_place_and_grads_untouched():
    opt = optimizers.Adam(clipnorm=0.1)
    opt.build(SLICES, np.float32)
    params = np.ones(10, np.float32)
    grads = np.arange(10, dtype=np.float32)
    before = grads.copy()
    ref = params
    opt.apply(params, grads)
    assert ref is params and not np.all(params == 1)
    np.testing.assert_array_equal(grads, before)


def test_non_contiguous_slices_leave_gaps_untouched():
    # variables at [0, 3) and [5, 8): elements 3, 4 and 8, 9 are not trained
    opt = optimizers.SGD(learning_rate=1.0)
    opt.build([(5, 3), (0, 3)], np.float64)
    params = np.zeros(10)
    opt.apply(params, np.ones(10))
    np.testing.assert_array_equal(params, [-1, -1, -1, 0, 0, -1, -1, -1, 0, 0])


def test_variables_round_trip_bit_exact():
    params0, grads = _problem()
    a = optimizers.RMSprop(momentum=0.5, centered=True)
    a.build(SLICES, np.float32)
    pa = params0.astype(np.float32)
    for g in grads[:3]:
        a.apply(pa, g.astype(np.float32))
    state = a.variables()
    assert set(state) == {"iterations", "velocity", "momentum", "average_gradient"}
    b = optimizers.get(optimizers.serialize(a))
    b.set_variables(state)  # before build: kept until build
    b.build(SLICES, np.float32)
    assert b.iterations == 3
    pb = pa.copy()
    for g in grads[3:]:
        a.apply(pa, g.astype(np.float32))
        b.apply(pb, g.astype(np.float32))
    np.testing.assert_array_equal(pa, pb)


def test_set_variables_rejects_mismatch():
    opt = optimizers.Adam()
    opt.build(SLICES, np.float64)
    with pytest.raises(ValueError, match="state"):
        opt.set_variables({"iterations": np.array(1), "momentum": np.zeros(10)})
    with pytest.raises(ValueError, match="shape"):
        opt.set_variables(
            {"iterations": np.array(1), "momentum": np.zeros(3), "velocity": np.zeros(3)}
        )


def test_config_round_trip():
    for opt in [
        optimizers.SGD(0.2, momentum=0.3, nesterov=True, clipvalue=2.0),
        optimizers.AdamW(weight_decay=0.01, amsgrad=True, global_clipnorm=1.0),
        optimizers.RMSprop(centered=True),
        optimizers.Adagrad(initial_accumulator_value=0.3),
    ]:
        clone = optimizers.get(optimizers.serialize(opt))
        assert type(clone) is type(opt)
        assert clone.get_config() == opt.get_config()


def test_exclude_from_weight_decay_by_name():
    opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.build([(0, 2), (2, 2)], np.float64, var_names=["dense/kernel", "dense/bias"])
    p = np.ones(4)
    opt.apply(p, np.zeros(4))  # zero gradient: only the decay moves the weights
    np.testing.assert_allclose(p, [0.95, 0.95, 1.0, 1.0], rtol=1e-15)


# ---------------------------------------------------------------- torch.optim

TORCH_CASES = [
    (optimizers.SGD, {"learning_rate": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    (
        optimizers.SGD,
        {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        "SGD",
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    ),
    # torch adds epsilon after the bias correction, Keras before: equal when epsilon = 0
    (optimizers.Adam, {"epsilon": 0.0}, "Adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 0.0}),
    (
        optimizers.AdamW,
        {"learning_rate": 0.01, "weight_decay": 0.1, "epsilon": 0.0},
        "AdamW",
        {"lr": 0.01, "weight_decay": 0.1, "eps": 0.0},
    ),
    # Keras's RMSprop needs epsilon > 0 (inside the square root): 1e-14 against torch's 0
    (
        optimizers.RMSprop,
        {"momentum": 0.5, "centered": True, "epsilon": 1e-14},
        "RMSprop",
        {"lr": 1e-3, "alpha": 0.9, "momentum": 0.5, "centered": True, "eps": 0.0},
    ),
    (
        optimizers.Adagrad,
        {"epsilon": 0.0},
        "Adagrad",
        {"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 0.0},
    ),
]


@pytest.mark.parametrize("cls,kwargs,torch_name,torch_kwargs", TORCH_CASES)
def test_matches_torch_optim(cls, kwargs, torch_name, torch_kwargs):
    torch = pytest.importorskip("torch", reason="torch not installed: torch.optim comparison")
    params0, grads = _problem(seed=3, steps=8)
    opt = cls(**kwargs)
    opt.build(SLICES, np.float64)
    params = params0.copy()
    tparams = [torch.tensor(params0[o : o + s].copy(), requires_grad=True) for o, s in SLICES]
    topt = getattr(torch.optim, torch_name)(tparams, **torch_kwargs)
    for g in grads:
        opt.apply(params, g)
        for tp, (o, s) in zip(tparams, SLICES):
            tp.grad = torch.tensor(g[o : o + s].copy())
        topt.step()
        expected = np.concatenate([tp.detach().numpy() for tp in tparams])
        np.testing.assert_allclose(params, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ schedules


def test_schedules_hand_values():
    s = optimizers.schedules
    exp = s.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert exp(0) == 0.1 and exp(10) == pytest.approx(0.05, rel=1e-15)
    assert exp(5) == pytest.approx(0.1 * 0.5**0.5, rel=1e-15)
    stair = s.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert stair(19) == pytest.approx(0.05, rel=1e-15)
    inv = s.InverseTimeDecay(0.1, decay_steps=2, decay_rate=0.5)
    assert inv(4) == pytest.approx(0.1 / 2.0, rel=1e-15)
    pw = s.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pw(0), pw(10), pw(11), pw(20), pw(21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    cos = s.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert cos(0) == 1.0 and cos(100) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
    assert cos(50) == pytest.approx(0.9 * 0.5 + 0.1, rel=1e-15)
    warm = s.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    assert warm(2) == pytest.approx(0.5) and warm(4) == pytest.approx(1.0)
    assert warm(14) == pytest.approx(0.0, abs=1e-15)


def test_schedule_drives_the_steps_and_round_trips():
    sched = optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    opt = optimizers.SGD(learning_rate=sched)
    opt.build([(0, 1)], np.float64)
    p = np.zeros(1)
    for _ in range(3):
        opt.apply(p, np.ones(1))
    np.testing.assert_allclose(p, [-(0.1 + 0.05 + 0.025)], rtol=1e-15)
    assert opt.learning_rate == pytest.approx(0.0125)
    clone = optimizers.get(optimizers.serialize(opt))
    assert isinstance(clone._learning_rate, optimizers.ExponentialDecay)
    assert clone.get_config() == opt.get_config()


# ------------------------------------------------ Adam's update in the engine


def _adam_numpy(p, g, m, v, v_hat, c1, c2, eps, alpha):
    """The NumPy form of Adam's update, one array operation at a time (the
    engine's kernel must round exactly as this does)."""
    with np.errstate(all="ignore"):  # the Inf and NaN steps
        m += (g - m) * c1
        v += (g * g - v) * c2
        if v_hat is not None:
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        p -= m * alpha / (np.sqrt(v) + eps)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_adam_update_is_the_numpy_form_bit_for_bit(isa, amsgrad, dtype):
    """On every ISA path (the update has a baseline and an AVX2 build)."""
    from lstm_fast._engine import _adam_update

    rng = np.random.default_rng(7)
    n = 1037  # not a multiple of any vector width
    t = np.dtype(dtype).type
    c1, c2, eps = t(1 - 0.9), t(1 - 0.999), t(1e-7)
    want = [rng.standard_normal(n).astype(dtype) for _ in range(2)] + [np.zeros(n, dtype)] * 2
    want = [a.copy() for a in want] + ([np.zeros(n, dtype)] if amsgrad else [None])
    got = [None if a is None else a.copy() for a in want]
    for step in range(1, 30):
        # gradients over many magnitudes, with a NaN, an Inf and zeros in the last steps
        g = (rng.standard_normal(n) * 10.0 ** rng.integers(-8, 4, n)).astype(dtype)
        if step > 25:
            g[[3, 500, 900]] = [np.nan, np.inf, 0.0]
        alpha = t(0.01) * np.sqrt(t(1) - t(0.999) ** t(step)) / (t(1) - t(0.9) ** t(step))
        _adam_numpy(want[0], g, want[2], want[3], want[4], c1, c2, eps, alpha)
        _adam_update(got[0], g, got[2], got[3], got[4], c1, c2, eps, alpha)
        for a, b in zip(got, want):
            if a is not None:
                np.testing.assert_array_equal(a, b)
    assert np.isnan(got[0][3]) and np.isnan(got[2][3])  # NaN propagated, as NumPy does


def test_engine_adam_update_rejects_bad_arrays():
    from lstm_fast._engine import _adam_update

    z = [np.zeros(8, np.float32) for _ in range(4)]
    with pytest.raises(TypeError, match=r"Expected g to be an ndarray of p's dtype float32\. "
                                        r"Received: g of type ndarray, dtype float64"):
        _adam_update(z[0], z[1].astype(np.float64), z[2], z[3], None, 0.1, 0.001, 1e-7, 0.01)
    with pytest.raises(ValueError, match=r"Expected m to be 1-D, C-contiguous, aligned, writeable "
                                         r"and of p's shape \(8,\)\. Received: m\.shape=\(4,\)"):
        _adam_update(z[0], z[1], z[2][:4], z[3], None, 0.1, 0.001, 1e-7, 0.01)
    read_only = np.zeros(8, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writeable=False"):
        _adam_update(z[0], z[1], z[2], read_only, None, 0.1, 0.001, 1e-7, 0.01)
    with pytest.raises(ValueError, match="contiguous=False"):
        _adam_update(z[0], np.zeros(16, np.float32)[::2], z[2], z[3], None, 0.1, 0.001, 1e-7, 0.01)
    misaligned = np.zeros(8 * 4 + 1, np.uint8)[1:].view(np.float32)  # the C code reads floats
    with pytest.raises(ValueError, match="aligned=False"):
        _adam_update(z[0], z[1], misaligned, z[3], None, 0.1, 0.001, 1e-7, 0.01)
    with pytest.raises(TypeError, match="Expected p to be a float32 or float64 ndarray"):
        _adam_update(np.zeros(8, np.int32), z[1], z[2], z[3], None, 0.1, 0.001, 1e-7, 0.01)


def test_adam_takes_strided_gradients():
    """Every rule reads the gradient as one flat run: a strided array is copied."""
    rng = np.random.default_rng(8)
    grads = rng.standard_normal(20).astype(np.float32)
    params = [rng.standard_normal(10).astype(np.float32)] * 2
    params = [p.copy() for p in params]
    opts = [optimizers.Adam(learning_rate=0.1) for _ in range(2)]
    for opt in opts:
        opt.build([(0, 10)], "float32")
    opts[0].apply(params[0], grads[::2])
    opts[1].apply(params[1], grads[::2].copy())
    np.testing.assert_array_equal(params[0], params[1])
