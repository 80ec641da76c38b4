"""Bidirectional: run an LSTM forwards and a copy of it backwards, merge the outputs."""

from __future__ import annotations

import numpy as np

from .base import Layer
from .lstm import LSTM

__all__ = ["Bidirectional"]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Bidirectional wrapper for an LSTM, as Keras's.

    The forward layer is a copy of `layer`; the backward layer a copy with
    `go_backwards` flipped (or `backward_layer`). With return_sequences, the
    backward output is flipped back to the original time order before merging.
    Weights: the forward layer's, then the backward layer's.

    Args:
        layer: an `LSTM` instance (its configuration is copied).
        merge_mode: 'concat' (default), 'sum', 'mul', 'ave', or None (a list
            [forward, backward]; not usable inside `Sequential`).
        backward_layer: optional `LSTM` for the backward direction.

    Call arguments:
        inputs (B, T, I), mask, training, initial_state ([h_f, c_f, h_b, c_b]).

    Example:

    >>> model = Sequential([Bidirectional(LSTM(16, return_sequences=True),
    ...                                   input_shape=(20, 10)), Dense(1)])
    """

    supports_masking = True
    _input_ndim = 3

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, LSTM):
            raise ValueError(
                "Expected layer to be an lstm_fast LSTM instance. "
                f"Received: layer={layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge_mode. Expected one of {_MERGE_MODES}. "
                f"Received: merge_mode={merge_mode!r}"
            )
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            if layer._batch_input_shape is not None:
                kwargs["batch_input_shape"] = layer._batch_input_shape
        super().__init__(**kwargs)
        self.layer = layer
        self.merge_mode = merge_mode
        config = layer.get_config()
        config.pop("batch_input_shape", None)
        self.forward_layer = LSTM.from_config({**config, "name": "forward_" + layer.name})
        if backward_layer is None:
            back_config = {**config, "name": "backward_" + layer.name,
                           "go_backwards": not layer.go_backwards}
            self.backward_layer = LSTM.from_config(back_config)
            self._custom_backward = False
        else:
            if not isinstance(backward_layer, LSTM):
                raise ValueError(
                    f"Expected backward_layer to be an LSTM. Received: "
                    f"backward_layer={backward_layer!r}"
                )
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError(
                    "Expected backward_layer.go_backwards to differ from layer.go_backwards. "
                    f"Received: both go_backwards={layer.go_backwards}"
                )
            for attr in ("return_sequences", "return_state", "stateful"):
                if getattr(backward_layer, attr) != getattr(layer, attr):
                    raise ValueError(
                        f"Expected backward_layer.{attr} to equal layer.{attr}="
                        f"{getattr(layer, attr)}. Received: backward_layer.{attr}="
                        f"{getattr(backward_layer, attr)}"
                    )
            self.backward_layer = backward_layer
            self._custom_backward = True
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        # masked steps output zeros in both directions, so the merged steps line up
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = self.return_sequences
            sub.dtype = self.dtype if "dtype" in kwargs else sub.dtype
        self.dtype = self.forward_layer.dtype
        self._initial_weights = weights

    # ------------------------------------------------------------------ build

    def _input_layout(self):
        return "(batch, time, features)"

    def build(self, input_shape):
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        super().build(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _weight_slots(self):
        return self.forward_layer._weight_slots() + self.backward_layer._weight_slots()

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        state = None
        if self.return_state:
            out, state = out[0], out[1:]
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (2 * out[-1],)
        elif self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            return ([out] if self.merge_mode is not None else out) + list(state) * 2
        return out

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        if self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + [None] * 4
        return out

    # --------------------------------------------------------------- forward

    def forward(self, x, mask=None, training=False, initial_state=None):
        fw_state = bw_state = None
        if initial_state is not None:
            if len(initial_state) != 4:
                raise ValueError(
                    "Expected initial_state to be [h_forward, c_forward, h_backward, "
                    f"c_backward]. Received: a list of {len(initial_state)} arrays"
                )
            fw_state, bw_state = list(initial_state[:2]), list(initial_state[2:])
        y_f = self.forward_layer.forward(x, mask=mask, training=training, initial_state=fw_state)
        y_b = self.backward_layer.forward(x, mask=mask, training=training, initial_state=bw_state)
        states = []
        if self.return_state:
            y_f, states_f = y_f[0], y_f[1:]
            y_b, states_b = y_b[0], y_b[1:]
            states = states_f + states_b
        if self.return_sequences:
            y_b = y_b[:, ::-1]  # back to original time order
        if self.merge_mode == "concat":
            y = np.concatenate([y_f, y_b], axis=-1)
        elif self.merge_mode == "sum":
            y = y_f + y_b
        elif self.merge_mode == "mul":
            y = y_f * y_b
        elif self.merge_mode == "ave":
            y = (y_f + y_b) * np.asarray(0.5, y_f.dtype)
        else:
            y = [y_f, y_b]
        self._cache = (y_f, y_b) if training else None
        if self.return_state:
            return (y if isinstance(y, list) else [y]) + states
        return y

    def __call__(self, inputs, training=False, mask=None, initial_state=None):
        return super().__call__(inputs, training=training, mask=mask, initial_state=initial_state)

    # -------------------------------------------------------------- backward

    def backward(self, dy, d_states=None):
        """dL/dx from dL/d(output); `d_states` = [dh_f, dc_f, dh_b, dc_b] with return_state."""
        y_f, y_b = self._cache
        if self.merge_mode == "concat":
            H = y_f.shape[-1]
            dy_f, dy_b = dy[..., :H], dy[..., H:]
        elif self.merge_mode == "sum":
            dy_f = dy_b = dy
        elif self.merge_mode == "mul":
            dy_f, dy_b = dy * y_b, dy * y_f
        elif self.merge_mode == "ave":
            dy_f = dy_b = dy * np.asarray(0.5, dy.dtype)
        else:
            dy_f, dy_b = dy
        if self.return_sequences:
            dy_b = dy_b[:, ::-1]  # to the backward layer's processing order
        ds = [None] * 4 if d_states is None else list(d_states)
        dx = self.forward_layer.backward(dy_f, ds[0], ds[1])
        dx = dx + self.backward_layer.backward(dy_b, ds[2], ds[3])
        return dx

    def gate_activations(self, inputs, mask=None):
        """The gates of both directions: {'forward': {...}, 'backward': {...}}.

        Each inner dict is `LSTM.gate_activations` of that direction ('i', 'f',
        'g', 'o', 'c', 'h', each (B, T, H), indexed by original time).

        Args:
            inputs: (B, T, I) array.
            mask: optional right-padded boolean (B, T).

        Returns:
            ``{'forward': gates, 'backward': gates}``.

        Example:

        >>> x = np.random.rand(2, 20, 10).astype("float32")
        >>> bi = Bidirectional(LSTM(4, return_sequences=True))
        >>> bi.gate_activations(x)["backward"]["f"].shape
        (2, 20, 4)
        """
        x = self._convert_input(inputs)
        self._maybe_build(x.shape)
        return {
            "forward": self.forward_layer.gate_activations(x, mask=mask),
            "backward": self.backward_layer.gate_activations(x, mask=mask),
        }

    def reset_states(self, states=None):
        """Reset both directions' carried state (stateful layers)."""
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
        else:
            self.forward_layer.reset_states(states[:2])
            self.backward_layer.reset_states(states[2:])

    reset_state = reset_states

    # ---------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config["layer"] = {"class_name": "LSTM", "config": self.layer.get_config()}
        config["merge_mode"] = self.merge_mode
        if self._custom_backward:
            config["backward_layer"] = {
                "class_name": "LSTM",
                "config": self.backward_layer.get_config(),
            }
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = LSTM.from_config(config.pop("layer")["config"])
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = LSTM.from_config(backward["config"])
        return cls(layer, backward_layer=backward, **config)
