"""Face data: `facegan prepare`, the .npz cache, the embedded LFW faces and the training pipelines."""
