"""apptool task plugin: gesture recognition from motion sequences (LSTM/GRU, offline and streaming)."""

__version__ = "0.1.0"
