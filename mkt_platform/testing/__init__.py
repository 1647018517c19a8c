"""What only the tests and benchmarks use: SYNTHETIC data generators (clearly labelled, in the
exchanges' exact formats, for volumes the recordings do not have) and the replay mutations
that make an exchange lie (drift, truncation, bad rows).

No shipped module (``defs``, ``lib``, ``replay``, the CLI) imports this package.
"""
