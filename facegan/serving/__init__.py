"""`facegan serve`: TF Serving's gRPC and REST APIs over exported models (the client is `facegan.client`).

`options.py` (what a server runs with), `model_config.py` (which models), `servable.py` (one
loaded version), `batching.py`, `solo.py` and `solo_worker.py` (the projections' bounded queue and
their nice-10 process), `manager.py` (versions, labels, hot swap), `predictor.py` (the
one code path behind both doors), `service.py` (the gRPC door), `rest.py` (the REST door: HTTP
only), `http_guard.py` (waitress with deadlines for slow clients), `json_tensor.py` (REST's
JSON <-> arrays), `config_files.py` (batching, monitoring and SSL config files), `tls.py`,
`metrics.py`, `text.py` (client text made safe to echo), `rate_limited_log.py` (client errors,
a few lines a window), `memory.py` (glibc's arenas and freed heap across hot swaps),
`server.py` (the whole server).
"""
