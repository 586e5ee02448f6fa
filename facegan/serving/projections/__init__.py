"""Projections: the signatures that cannot be batched (one image, hundreds of model steps, seconds
of CPU), served apart so that they never starve generation.

`queue.py` (`ProjectionQueue`: a few run, a few wait, the rest are refused; deadlines and the
client leaving stop them), `cancel.py` (`Cancel`, the one-shot stop a call carries, and
`CancelledCall`), `worker.py` (`ProjectionWorker`: the server's handle on one version's nice-10
child process) and `child.py` (the program that child runs).
"""
