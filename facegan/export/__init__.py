"""Export: the generator as a versioned SavedModel that TensorFlow Serving hosts as-is."""
