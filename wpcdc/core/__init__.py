"""The pure core: WordPress semantics, positions, events, checkpoints and rules.

Imports no I/O, network, database, broker, metrics or settings library and
nothing else from the package (import-linter enforces it; docs/ARCHITECTURE.md).
"""
