"""Faces without a server: the static web demo. `index.html` and `app.js` (the page),
`seed_to_z.js` (seed -> z in JavaScript, the twin of facegan/client/philox.py), `sw.js` (offline),
`site.py` (`facegan web`: builds the site from an ONNX export), `runtime.py` (onnxruntime-web's
WASM build, vendored into ort/ as package-lock.json pins it), `static_server.py` (serves a site
with the cross-origin isolation headers, for trying it, the tests and the benchmark).
"""
