"""Exporters: pure functions from a domain Plan to bytes or documents. No Flask here."""

from planner.export.exporters import (
    EXPORTER_NAMES,
    FAST_EXPORTERS,
    REFERENCE_EXPORTERS,
    Exporters,
    exporters_named,
)

__all__ = [
    "EXPORTER_NAMES",
    "FAST_EXPORTERS",
    "REFERENCE_EXPORTERS",
    "Exporters",
    "exporters_named",
]
