// seed -> z in the browser: the JavaScript twin of facegan/client/philox.py (read its notes).
// TensorFlow's tf.random.stateless_normal([latentDim], seed=[seed, 0], alg="philox"), float32:
// the Philox-4x32-10 words are exact; log, sin and cos are computed in double precision and
// rounded to float32 (Math.fround), as the NumPy port does, so the two agree and differ from
// TensorFlow's C-library float functions by a few ulps at most (tests/test_philox.py measures it).

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;
const PHILOX_ROUNDS = 10;
const SEED_KEY = [0x3ec8f720, 0x02461e29];
const BOX_MULLER_EPSILON = Math.fround(1.0e-7);
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

// [high, low] 32-bit words of the 64-bit product of two uint32 values (16-bit halves keep every
// partial product exact in a double).
function multiplyHighLow(a, b) {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const loLo = aLo * bLo;
  const mid1 = aHi * bLo;
  const mid2 = aLo * bHi;
  const carry = ((mid1 & 0xffff) + (mid2 & 0xffff) + (loLo >>> 16)) >>> 16;
  const high = (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
  const low = Math.imul(a, b) >>> 0;
  return [high, low];
}

// One Philox-4x32-10 block: four uint32 counter words and two key words -> four uint32 words.
export function philox4x32(counter, key) {
  let [c0, c1, c2, c3] = counter;
  let [k0, k1] = key;
  for (let round = 0; round < PHILOX_ROUNDS; round++) {
    const [high0, low0] = multiplyHighLow(PHILOX_M0, c0);
    const [high1, low1] = multiplyHighLow(PHILOX_M1, c2);
    const next0 = (high1 ^ c1 ^ k0) >>> 0;
    const next2 = (high0 ^ c3 ^ k1) >>> 0;
    c0 = next0;
    c1 = low1;
    c2 = next2;
    c3 = low0;
    if (round < PHILOX_ROUNDS - 1) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
  }
  return [c0, c1, c2, c3];
}

// TensorFlow's StatelessRandomGetKeyCounter for the seed pair (seed, 0); seed is a BigInt.
function keyAndCounter(seed) {
  const word = BigInt.asUintN(64, seed); // two's complement, as C++ casts int64 to uint64
  const low = Number(word & 0xffffffffn);
  const high = Number(word >> 32n);
  const mix = philox4x32([low, high, 0, 0], SEED_KEY);
  return { key: [mix[0], mix[1]], counter: [0, 0, mix[2], mix[3]] };
}

const wordView = new Uint32Array(1);
const floatView = new Float32Array(wordView.buffer);

// [0, 1) from the low 23 bits of x, exactly as TensorFlow's Uint32ToFloat.
function uint32ToUnitFloat(x) {
  wordView[0] = 0x3f800000 | (x & 0x7fffff);
  return floatView[0] - 1.0;
}

// Two float32 normals from two words, in TensorFlow's order of operations.
function boxMuller(x0, x1) {
  const u1 = Math.max(uint32ToUnitFloat(x0), BOX_MULLER_EPSILON);
  const v1 = Math.fround(2.0 * Math.PI * uint32ToUnitFloat(x1));
  const radius = Math.fround(Math.sqrt(Math.fround(-2.0 * Math.fround(Math.log(u1)))));
  const sin = Math.fround(Math.sin(v1));
  const cos = Math.fround(Math.cos(v1));
  return [Math.fround(sin * radius), Math.fround(cos * radius)];
}

// A seed (BigInt, or a safe integer Number) in int64's range -> Float32Array z of latentDim.
export function seedToZ(seed, latentDim) {
  const big = BigInt(seed);
  if (big < INT64_MIN || big > INT64_MAX) {
    throw new RangeError(`seed ${big} is outside int64 (${INT64_MIN}..${INT64_MAX})`);
  }
  const { key, counter } = keyAndCounter(big);
  const z = new Float32Array(latentDim);
  for (let block = 0; 4 * block < latentDim; block++) {
    const words = philox4x32([counter[0] + block, counter[1], counter[2], counter[3]], key);
    const values = [...boxMuller(words[0], words[1]), ...boxMuller(words[2], words[3])];
    for (let i = 0; i < 4 && 4 * block + i < latentDim; i++) {
      z[4 * block + i] = values[i];
    }
  }
  return z;
}
