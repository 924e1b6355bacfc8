"""Scene labeling for apptool: per-pixel outdoor-scene classes after Farabet et al. 2013."""

__version__ = "0.1.0"
