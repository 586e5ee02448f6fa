"""Face data: `prepare.py` (`facegan prepare`: threaded decode) with `resize.py` (batched Lanczos),
`cache.py` (the verified .npz), `embedded.py` (the LFW faces inside scikit-image), `pipeline.py`
(tf.data and NumPy batches) and `photo.py` (one photo through prepare's pipeline, for Find a face).
"""
