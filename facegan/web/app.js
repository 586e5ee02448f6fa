// The static web demo: facegan's ONNX generator in ONNX Runtime Web (WASM), seed -> z by the
// port of TensorFlow's Philox (seed_to_z.js). Built into a folder by `facegan web`, which
// writes config.json (the model's facts and the seed range) beside this file.
import * as ort from "./ort/ort.wasm.min.mjs";
import { seedToZ } from "./seed_to_z.js";

const SLIDERS = 8; // z values shown as sliders in Explore z
const SLIDER_RANGE = 4; // each slider spans -4..4: 99.99 % of N(0, 1)

const $ = (id) => document.getElementById(id);
const message = $("message");
const status = $("status");

// What the page was asked for, checked: a seed is a whole number in the demo's range.
class InputError extends Error {}

function parseSeed(text, name, maxSeed) {
  const trimmed = String(text).trim();
  if (!/^[+-]?\d{1,25}$/.test(trimmed)) {
    throw new InputError(`${name} must be a whole number from 0 to ${maxSeed}, got "${trimmed.slice(0, 40)}"`);
  }
  const seed = BigInt(trimmed);
  if (seed < 0n || seed > BigInt(maxSeed)) {
    throw new InputError(`${name} must be from 0 to ${maxSeed}, got ${trimmed.slice(0, 40)}`);
  }
  return seed;
}

// Spherical interpolation in double precision, as the Gradio demo's slerp (facegan/demo/faces.py).
export function slerp(z0, z1, t) {
  const norm = (v) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
  const n0 = norm(z0);
  const n1 = norm(z1);
  let cos = 0;
  for (let i = 0; i < z0.length; i++) cos += (z0[i] / n0) * (z1[i] / n1);
  const omega = Math.acos(Math.min(1, Math.max(-1, cos)));
  const out = new Float32Array(z0.length);
  for (let i = 0; i < z0.length; i++) {
    if (t === 0) out[i] = z0[i];
    else if (t === 1) out[i] = z1[i];
    else if (Math.sin(omega) < 1e-6) out[i] = (1 - t) * z0[i] + t * z1[i];
    else out[i] = (Math.sin((1 - t) * omega) * z0[i] + Math.sin(t * omega) * z1[i]) / Math.sin(omega);
  }
  return out;
}

// One canvas's renderer: the newest request wins, and at most one inference runs per canvas.
class Renderer {
  constructor(model, canvas) {
    this.model = model;
    this.canvas = canvas;
    this.pending = null;
    this.busy = false;
    this.count = 0;
  }

  show(z) {
    this.pending = z;
    if (!this.busy) this.drain();
  }

  async drain() {
    this.busy = true;
    while (this.pending) {
      const z = this.pending;
      this.pending = null;
      try {
        const started = performance.now();
        const pixels = await this.model.faces(z, 1);
        draw(this.canvas, pixels, this.model.resolution);
        this.count += 1;
        this.canvas.dataset.rendered = String(this.count);
        status.textContent = `rendered in ${(performance.now() - started).toFixed(1)} ms (${this.model.threads} thread${this.model.threads > 1 ? "s" : ""})`;
      } catch (error) {
        message.textContent = `could not render: ${error.message}`;
      }
    }
    this.busy = false;
  }
}

function draw(canvas, pixels, resolution) {
  const rgba = new Uint8ClampedArray(resolution * resolution * 4);
  for (let i = 0, j = 0; i < pixels.length; i += 3, j += 4) {
    rgba[j] = pixels[i];
    rgba[j + 1] = pixels[i + 1];
    rgba[j + 2] = pixels[i + 2];
    rgba[j + 3] = 255;
  }
  canvas.width = resolution;
  canvas.height = resolution;
  canvas.getContext("2d").putImageData(new ImageData(rgba, resolution, resolution), 0, 0);
}

class Model {
  static async load(config, threads) {
    ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
    ort.env.wasm.numThreads = threads;
    const session = await ort.InferenceSession.create("model/generator.onnx", { executionProviders: ["wasm"] });
    return new Model(session, config, threads);
  }

  constructor(session, config, threads) {
    this.session = session;
    this.latentDim = config.latent_dim;
    this.resolution = config.resolution;
    this.threads = threads;
  }

  // uint8 RGB pixels [n, H, W, 3] for z (Float32Array of n * latentDim).
  async faces(z, n) {
    const result = await this.session.run({ z: new ort.Tensor("float32", z, [n, this.latentDim]) });
    return result.images.data;
  }
}

function threadsWanted() {
  const asked = Number(new URLSearchParams(location.search).get("threads"));
  if (Number.isInteger(asked) && asked > 0) return asked;
  // several threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages
  return self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
}

function showFacts(config) {
  const card = config.card;
  const quality = card.quality || {};
  const facts = [
    ["model", `${card.resolution} px, z of ${card.latent_dim} numbers, N(0, 1)`],
    ["run", `${card.run}, ${card.epochs_trained} epochs`],
    ["data", `${card.data.name} (${card.data.count} images)`],
    ["face rate", quality.face_rate === undefined ? "not measured" : `${quality.face_rate} (real faces: ${quality.face_rate_real})`],
    ["SWD", quality.swd === undefined ? "not measured" : quality.swd.toFixed(1)],
    ["exported", card.exported],
    ["file", `generator.onnx, ${(config.model_bytes / 1e6).toFixed(1)} MB, SHA-256 ${config.model_sha256.slice(0, 16)}…`],
    ["runtime", `onnxruntime-web ${config.onnxruntime_web} (WASM), ${config.threads} thread(s)`],
    ["seed → z", card.seed_to_z],
  ];
  $("facts").replaceChildren(
    ...facts.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

async function main() {
  const config = await (await fetch("config.json")).json();
  config.threads = threadsWanted();
  const model = await Model.load(config, config.threads);
  showFacts(config);
  const maxSeed = config.max_seed;
  const generate = new Renderer(model, $("generate-canvas"));
  const interpolate = new Renderer(model, $("interpolate-canvas"));
  const explore = new Renderer(model, $("explore-canvas"));
  let exploreZ = null;

  // Each control re-renders its own panel; bad input shows one message and keeps the last face.
  function guarded(action) {
    return () => {
      try {
        action();
        message.textContent = "";
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        message.textContent = error.message;
      }
    };
  }

  const renderGenerate = guarded(() => {
    const seed = parseSeed($("seed").value, "seed", maxSeed);
    const psi = Number($("truncation").value);
    $("truncation-value").textContent = psi.toFixed(2);
    const z = seedToZ(seed, model.latentDim).map((x) => Math.fround(psi * x));
    generate.show(z);
  });
  const renderInterpolate = guarded(() => {
    const a = seedToZ(parseSeed($("seed-a").value, "from seed", maxSeed), model.latentDim);
    const b = seedToZ(parseSeed($("seed-b").value, "to seed", maxSeed), model.latentDim);
    const t = Number($("t").value);
    $("t-value").textContent = t.toFixed(2);
    interpolate.show(slerp(a, b, t));
  });
  const renderExplore = guarded(() => {
    const seed = parseSeed($("explore-seed").value, "Explore's seed", maxSeed);
    const first = Number($("first-dim").value);
    if (!Number.isInteger(first) || first < 0 || first > model.latentDim - SLIDERS) {
      throw new InputError(`the first dimension must be a whole number from 0 to ${model.latentDim - SLIDERS}`);
    }
    exploreZ = seedToZ(seed, model.latentDim);
    const sliders = [];
    for (let i = 0; i < SLIDERS; i++) {
      const dim = first + i;
      const label = document.createElement("label");
      const value = document.createElement("output");
      value.textContent = exploreZ[dim].toFixed(2);
      label.append(`z[${dim}]`, value);
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: -SLIDER_RANGE, max: SLIDER_RANGE, step: 0.01, id: `z-${i}` });
      slider.value = String(exploreZ[dim]);
      slider.addEventListener("input", () => {
        exploreZ[dim] = Number(slider.value);
        value.textContent = exploreZ[dim].toFixed(2);
        explore.show(Float32Array.from(exploreZ));
      });
      sliders.push(label, slider);
    }
    $("sliders").replaceChildren(...sliders);
    explore.show(Float32Array.from(exploreZ));
  });

  $("random").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * (maxSeed + 1)));
    renderGenerate();
  });
  for (const id of ["seed", "truncation"]) $(id).addEventListener("input", renderGenerate);
  for (const id of ["seed-a", "seed-b", "t"]) $(id).addEventListener("input", renderInterpolate);
  for (const id of ["explore-seed", "first-dim"]) $(id).addEventListener("input", renderExplore);
  renderGenerate();
  renderInterpolate();
  renderExplore();

  // For tests and benchmarks: faces per second at batch 1 over `count` renders.
  window.facegan = {
    model,
    async facesPerSecond(count) {
      const z = seedToZ(0n, model.latentDim);
      await model.faces(z, 1);
      const started = performance.now();
      for (let i = 0; i < count; i++) await model.faces(z, 1);
      return (1000 * count) / (performance.now() - started);
    },
  };
  document.body.dataset.ready = "true";
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((error) => {
      status.textContent += ` (works online only: ${error.message})`;
    });
  }
}

main().catch((error) => {
  message.textContent = `The model could not be loaded: ${error.message}`;
  status.textContent = "";
});
