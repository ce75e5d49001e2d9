"""facereg face pipeline: decoding, detection, alignment, quality, backbones, embedders, metrics.

Nothing in this package talks to a database or a queue.
"""
