"""Layers of lstm_fast (Keras names and arguments).

Example:

>>> from lstm_fast.layers import LSTM, Dense
>>> from lstm_fast.models import Sequential
>>> model = Sequential([LSTM(50, input_shape=(20, 10), return_sequences=True), Dense(1)])
"""

from __future__ import annotations

from .base import Layer
from .bidirectional import Bidirectional
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .input import Input, InputLayer
from .lstm import LSTM
from .masking import Masking

__all__ = [
    "Layer",
    "LSTM",
    "Dense",
    "Dropout",
    "Embedding",
    "Masking",
    "Bidirectional",
    "Input",
    "InputLayer",
    "serialize",
    "deserialize",
    "get_layer_class",
]

_CLASSES = {
    cls.__name__: cls
    for cls in (LSTM, Dense, Dropout, Embedding, Masking, Bidirectional, InputLayer)
}


def get_layer_class(class_name, custom_objects=None):
    """The layer class of a name ('LSTM', 'Dense', ...), or of `custom_objects`.

    Args:
        class_name: the class name, as in a saved config ('LSTM', 'Dense',
            'Dropout', 'Embedding', 'Masking', 'Bidirectional', 'InputLayer').
        custom_objects: optional ``{class_name: class}`` for layers of your
            own; they take precedence over the built-in ones.

    Returns:
        The layer class.

    Example:

    >>> lstm_fast.layers.get_layer_class("LSTM")
    <class 'lstm_fast.layers.lstm.LSTM'>
    """
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name]
    if class_name not in _CLASSES:
        raise ValueError(
            f"Unknown layer class. Expected one of {sorted(_CLASSES)} (or pass "
            f"custom_objects). Received: class_name={class_name!r}"
        )
    return _CLASSES[class_name]


def serialize(layer):
    """Describe a layer as a JSON-serializable dict: its class name and its config.

    The weights are not included (see ``get_weights``).

    Args:
        layer: an lstm_fast `Layer`.

    Returns:
        ``{'class_name': ..., 'config': layer.get_config()}``, which
        `deserialize` turns back into an equal (new, unbuilt) layer.

    Example:

    >>> config = lstm_fast.layers.serialize(lstm_fast.Dense(3, activation="relu"))
    >>> config["class_name"], config["config"]["units"], config["config"]["activation"]
    ('Dense', 3, 'relu')
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"Expected an lstm_fast Layer. Received: layer={layer!r}")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config, custom_objects=None):
    """A new (unbuilt) layer from `serialize`'s dict.

    Args:
        config: ``{'class_name': ..., 'config': {...}}``, as `serialize` returns it.
        custom_objects: optional ``{class_name: class}`` for layers of your own.

    Returns:
        A Layer.

    Example:

    >>> layer = lstm_fast.layers.deserialize({"class_name": "Dense", "config": {"units": 3}})
    >>> type(layer).__name__, layer.units, layer.built
    ('Dense', 3, False)
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "Expected a dict with 'class_name' and 'config'. "
            f"Received: config={config!r}"
        )
    cls = get_layer_class(config["class_name"], custom_objects)
    return cls.from_config(dict(config.get("config", {})))
