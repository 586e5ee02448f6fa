"""facegan: a face-generating DCGAN, trained with Keras 3 and served over TensorFlow Serving's gRPC API."""

__version__ = "0.1.0"
