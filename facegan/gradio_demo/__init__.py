"""The Gradio demo: faces from seeds, interpolations, latent edits and Find a face, all fetched
from a server over gRPC or REST. `faces.py` says what the demo asks for and checks its inputs
(no Gradio); `app.py` is the Gradio Blocks app.
"""
