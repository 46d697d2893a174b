"""SEMC: an elastic, Dask-based cryo-EM pre-processing system (a refactor of Leginon's Appion)."""

__version__ = "0.1.0"
