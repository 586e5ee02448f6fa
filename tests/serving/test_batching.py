"""facegan.serving.batching: TF Serving's BatchingParameters and the batcher on their own."""

import threading

import numpy as np
import pytest

from facegan.serving.batching import Batcher, BatchingOptions, parse_batching_parameters


def test_batching_parameters_text_format():
    options = parse_batching_parameters("""
        max_batch_size { value: 32 }
        batch_timeout_micros { value: 5000 }
        num_batch_threads { value: 2 }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 32
    """)
    assert options == BatchingOptions(32, 5000, 10, 2, (8, 32))
    for bad, words in [
        ("max_batch_size: 3", "max_batch_size"),
        ("colour { value: 1 }", "colour"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4", "allowed_batch_sizes"),
        ("num_batch_threads { value: 0 }", "num_batch_threads"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_batching_parameters(bad)


def test_batcher_splits_pads_and_merges():
    sizes = []

    def run(inputs):
        sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    batcher = Batcher(
        run,
        BatchingOptions(
            max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1, allowed_batch_sizes=(4, 8)
        ),
    )
    results = {}

    def one(i):
        results[i] = batcher.submit({"x": np.full((1 + i % 2, 3), i, np.float32)})["y"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i in range(4):
        np.testing.assert_array_equal(results[i], np.full((1 + i % 2, 3), 2 * i, np.float32))
    assert sum(sizes) >= 6 and all(s in (4, 8) for s in sizes) and len(sizes) <= 2
