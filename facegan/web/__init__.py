"""Faces without a server: the static web demo. `index.html` and `app.js` (the page),
`seed_to_z.js` (seed -> z in JavaScript, the twin of facegan/client/philox.py), `sw.js` (offline),
`site.py` (`facegan web`: builds the site from an ONNX export), `static_server.py` (serves a site
with the cross-origin isolation headers, for trying it, the tests and the benchmark).
"""
