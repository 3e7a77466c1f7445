"""Exporters: pure functions from a domain Plan to bytes or documents. No Flask here."""
