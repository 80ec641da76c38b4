"""lstm_fast: a compiled CPU LSTM engine with a Keras-like API."""

__version__ = "0.1.0"
