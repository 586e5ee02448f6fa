"""The Gradio demo: faces from seeds, interpolations and latent edits, all fetched over gRPC."""
