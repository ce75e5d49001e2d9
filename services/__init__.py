"""facereg domain services: configuration, evaluation and (later) registry, index, enrollment."""
