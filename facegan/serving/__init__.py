"""TF Serving's gRPC API: a TF-free client (client, protocol, tensors) and `facegan serve` (the rest)."""
