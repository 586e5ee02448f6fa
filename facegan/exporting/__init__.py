"""Export: the generator as a versioned SavedModel that TensorFlow Serving hosts as-is.
`signatures.py` (the graph and its signatures), `projection.py` (Find a face: Adam on z in the
graph), `serving_files.py` (warm-up records, models.config), `writer.py` (versioning, atomic
write, model card), `portable.py` (the same generator for ONNX Runtime and LiteRT, outside
TF Serving's base path).
"""
