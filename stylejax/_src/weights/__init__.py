"""Weights I/O: the stylejax weights file, converters, the PyTorch and MATLAB readers, downloads,
published sources, random weights, and the library side of ``stylejax weights``."""
