"""The composition root's helpers (edge.daemon): the one place that picks an implementation
from the settings (camera sources, the thermal calibration, which PAD runs)."""
