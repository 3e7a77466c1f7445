"""marshmallow schemas: the protocol file format and the HTTP request/response shapes.

Nothing here imports Flask; the CLI and the exporters use these too.
"""
