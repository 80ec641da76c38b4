"""lstm_fast: a compiled CPU LSTM engine with a Keras-like API.

Example:

>>> import lstm_fast as lf
>>> model = lf.Sequential([lf.LSTM(50, input_shape=(20, 10), return_sequences=True),
...                        lf.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")
"""

__version__ = "0.1.0"

from . import (  # noqa: E402
    activations,
    callbacks,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    utils,
)
from .layers import (  # noqa: E402
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Input,
    InputLayer,
    Masking,
)
from .models import Sequential, load_model  # noqa: E402

__all__ = [
    "Sequential",
    "load_model",
    "LSTM",
    "Dense",
    "Dropout",
    "Embedding",
    "Masking",
    "Bidirectional",
    "Input",
    "InputLayer",
    "activations",
    "callbacks",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "utils",
]
