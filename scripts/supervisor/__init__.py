"""The local process supervisor: MongoDB, Redis, Chroma, workers and the dashboard on one machine."""
