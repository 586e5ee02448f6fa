"""seed -> z without TensorFlow: the NumPy twin of `facegan.sampling.seed_to_z`.

`seed_to_z` is `tf.random.stateless_normal([latent_dim], seed=[seed, 0], alg="philox")` in
float32. This module computes the same numbers as TensorFlow's CPU kernels do (TF 2.21,
tensorflow/core/kernels/stateless_random_ops.cc and lib/random/philox_random.h,
random_distributions.h), so that clients and the ONNX/LiteRT exports, which take z, can make
"seed 42"'s face with no server and no TensorFlow:

1. Key and counter from the seed (`StatelessRandomGetKeyCounter`): the seed pair
   (seed, 0) as 64-bit words is the counter of one Philox-4x32-10 block under the fixed key
   (0x3ec8f720, 0x02461e29); its output's first two words are the key, its last two the upper
   half of the counter (the lower half 0).
2. Philox-4x32-10 (Salmon et al., 2011): four 32-bit words per block; block g of the output uses
   the counter plus g.
3. Box-Muller (`BoxMullerFloat`): each pair of words (x0, x1) becomes two normals,
   u1 = max(float(x0), 1e-7), v1 = 2 pi float(x1), r = sqrt(-2 log u1), (r sin v1, r cos v1),
   where float(x) puts x's low 23 bits under the exponent of 1.0 and subtracts 1 (exactly).

Everything up to Box-Muller is integer arithmetic and exact. TensorFlow computes log, sin and cos
in float32 with the C library (glibc's logf and sincosf on Linux); here they are computed in
float64 and rounded to float32, which is the correctly rounded result. The C library's results
are within about half an ulp of that, so now and then the two differ by one ulp in log or in sin/cos,
and the final product by at most two ulps (tests/client/test_philox.py measures how often, on 10,000+
seeds; the JavaScript port in facegan/web/ does the same arithmetic).
"""

from __future__ import annotations

import numpy as np

MASK32 = 0xFFFFFFFF
PHILOX_M0 = 0xD2511F53  # round multipliers and key increments of Philox-4x32 (Random123's values)
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10
SEED_KEY = (0x3EC8F720, 0x02461E29)  # TensorFlow's fixed key for scrambling a seed into a key and counter
BOX_MULLER_EPSILON = np.float32(1.0e-7)  # Box-Muller's smallest u1: keeps log() finite


def philox4x32(counter: list[np.ndarray], key: list[np.ndarray]) -> list[np.ndarray]:
    """One Philox-4x32-10 block for every lane: four uint64 arrays of 32-bit values in, four out."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(PHILOX_ROUNDS):
        product0 = PHILOX_M0 * c0  # a 32 x 32-bit product fits a uint64 exactly
        product1 = PHILOX_M1 * c2
        next_c0 = (product1 >> 32) ^ c1 ^ k0
        next_c1 = product1 & MASK32
        next_c2 = (product0 >> 32) ^ c3 ^ k1
        next_c3 = product0 & MASK32
        c0, c1, c2, c3 = next_c0, next_c1, next_c2, next_c3
        if round_index < PHILOX_ROUNDS - 1:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
    return [c0, c1, c2, c3]


def key_and_counter(seeds: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """TensorFlow's StatelessRandomGetKeyCounter for seed pairs (seed, 0)."""
    words = np.asarray(seeds, np.int64).astype(np.uint64)  # two's complement, as C++ casts int64 to uint64
    zeros = np.zeros_like(words)
    counter = [words & MASK32, words >> np.uint64(32), zeros, zeros]
    key = [np.full_like(words, SEED_KEY[0]), np.full_like(words, SEED_KEY[1])]
    mix = philox4x32(counter, key)
    return [mix[0], mix[1]], [zeros, zeros, mix[2], mix[3]]


def uint32_to_unit_float(x: np.ndarray) -> np.ndarray:
    """[0, 1) float32 from the low 23 bits of x, exactly as TensorFlow's Uint32ToFloat."""
    bits = (np.uint32(0x3F800000) | (x.astype(np.uint32) & np.uint32(0x7FFFFF))).view(np.float32)
    return bits - np.float32(1.0)


def box_muller(x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 normals from two 32-bit words, in TensorFlow's float32 order of operations."""
    u1 = np.maximum(uint32_to_unit_float(x0), BOX_MULLER_EPSILON)
    # C++ computes 2.0f * M_PI * u in double (M_PI is a double) and rounds once to float.
    v1 = (2.0 * np.pi * uint32_to_unit_float(x1).astype(np.float64)).astype(np.float32)
    log_u1 = np.log(u1.astype(np.float64)).astype(np.float32)
    radius = np.sqrt(np.float32(-2.0) * log_u1)  # float32 sqrt is correctly rounded everywhere
    sin_v1 = np.sin(v1.astype(np.float64)).astype(np.float32)
    cos_v1 = np.cos(v1.astype(np.float64)).astype(np.float32)
    return sin_v1 * radius, cos_v1 * radius


CHUNK = 4096  # seeds per pass: the Philox lanes of a pass take ~100 bytes a number, so passes bound the memory


def seed_to_z(seeds, latent_dim: int) -> np.ndarray:
    """int64 seeds [N] -> float32 z [N, latent_dim]: TensorFlow's numbers (see the module's notes).
    CHUNK seeds at a time into the result: the memory is the result's plus one chunk's."""
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    z = np.empty((len(seeds), latent_dim), np.float32)
    for i in range(0, len(seeds), CHUNK):
        z[i : i + CHUNK] = _seed_to_z(seeds[i : i + CHUNK], latent_dim)
    return z


def _seed_to_z(seeds: np.ndarray, latent_dim: int) -> np.ndarray:
    key, counter = key_and_counter(seeds)
    blocks = -(-latent_dim // 4)  # each Philox block gives four words: two Box-Muller pairs
    block = np.arange(blocks, dtype=np.uint64)[None, :]
    lane = [np.broadcast_to(word[:, None], (len(seeds), blocks)) for word in counter]
    words = philox4x32(
        [lane[0] + block, lane[1], lane[2], lane[3]],  # block < 2^32: no carry into the next word
        [np.broadcast_to(k[:, None], lane[0].shape) for k in key],
    )
    first_sin, first_cos = box_muller(words[0], words[1])
    second_sin, second_cos = box_muller(words[2], words[3])
    z = np.stack([first_sin, first_cos, second_sin, second_cos], axis=-1).reshape(len(seeds), 4 * blocks)
    return np.ascontiguousarray(z[:, :latent_dim])
