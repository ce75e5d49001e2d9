"""The face, from bytes to vectors: image_io (untrusted images decoded), detection/ (detectors behind one
protocol), alignment, quality, embedders/ (PyTorch, ONNX Runtime, dlib behind one protocol) on backbones/, the
model zoo and its weights, pipeline (the stages composed), image_hash, export (to ONNX), and evaluation/
(metrics, plots, the LFW protocols).

Nothing in this package talks to a database or a queue, or imports services, workers, dashboard or scripts.
"""
