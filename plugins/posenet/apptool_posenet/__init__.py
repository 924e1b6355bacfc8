"""PoseNet relocalization (Kendall, Grimes & Cipolla 2015; Kendall & Cipolla 2017) as an apptool task."""

__version__ = "0.1.0"
