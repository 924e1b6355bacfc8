"""Image captioning for apptool, after Vinyals et al., Show and Tell (2015)."""

__version__ = "0.1.0"
