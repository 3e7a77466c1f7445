"""stride-back: return-to-run protocol planner for bone stress injuries."""

__version__ = "0.1.0"
