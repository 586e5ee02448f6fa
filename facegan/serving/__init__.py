"""`facegan serve`: TF Serving's gRPC and REST APIs over exported models (the client is `facegan.client`).

`options.py` (what a server runs with), `model_config.py` (which models), `servable.py` (one
loaded version), `batching.py`, `projections/` (the projections' bounded queue, cancellation and
nice-10 process), `request.py` (`Request`, `ModelRef`: one call as either door built it),
`manager.py` (versions, labels, hot swap), `predictor.py` (the one code path behind both
doors), `graph_errors.py`, `service.py` (the gRPC door), `rest.py` (the REST door: HTTP
only), `http_guard.py` (waitress with deadlines for slow clients), `json_tensor.py` (REST's
JSON <-> arrays), `config_files.py` (batching, monitoring and SSL config files), `tls.py`,
`metrics.py`, `text.py` (client text made safe to echo), `rate_limited_log.py` (client errors,
a few lines a window), `memory.py` (glibc's arenas and freed heap across hot swaps),
`server.py` (the whole server).
"""
