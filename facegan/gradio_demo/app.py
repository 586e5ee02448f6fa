"""The Gradio 6 Blocks app of `facegan demo`. Handlers only translate between widgets and FaceSource."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import random
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo must work offline

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder

from facegan import images
from facegan.client.protocol import PROJECT_MAX_STEPS, PROJECT_STEPS
from facegan.gradio_demo.faces import MAX_FACES, MAX_FRAMES, DemoError, Faces, FaceSource, whole_number
from facegan.seeds import MAX_SEED

LATEST = "latest"
QUEUE_SIZE = 32  # requests waiting beyond this are turned away, so a burst can't pile up on the server
CONCURRENCY = 4  # requests sent to the server at once
PROJECTING = (  # the Find a face status while the server works
    "Finding the face… (a few seconds; the first projection on a server also starts its process, up to a minute)"
)
THEME_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts: no web-font downloads
# 32 px faces, enlarged crisply
CSS = "#gallery img, #explore-gallery img, #strip img, #gif img { image-rendering: pixelated; }"


# Disk: every answer's images are files in Gradio's cache; every CACHE_SWEEP_S, files older than
# CACHE_AGE_S are deleted, and then the oldest ones until the folder holds at most CACHE_BYTES
# (thirty 7.9 MB uploads in 2 s once added 248 MB that waited for the age limit). facegan's own
# downloads (grid PNG, GIF) keep the newest KEEP_DOWNLOADS. The one file input is Find a face's
# photo: uploads are capped at MAX_UPLOAD (Gradio refuses larger ones before they reach the
# app), and a PNG or WebP over 16 megapixels is refused before it is decoded (data/photo.py).
CACHE_SWEEP_S = 10
CACHE_AGE_S = 600
CACHE_BYTES = 256 * 2**20
KEEP_DOWNLOADS = 64
MAX_UPLOAD = "8mb"
# Find a face's examples: four of the embedded LFW faces (skimage.data.lfw_subset(), the first 100
# are faces), 25 px gray enlarged to 100 px, shipped as package data so the demo alone has them
EXAMPLE_PHOTOS = sorted((Path(__file__).parent / "examples").glob("lfw-*.png"))


DOWNLOAD_PREFIX = "facegan-"  # the grid PNGs and GIFs this app writes, and Gradio's copies of them


class CacheSweeper:
    """Deletes files older than `age_s` under Gradio's cache folder every `every_s` seconds, in a
    daemon thread that `start()` starts (`facegan demo` does, for the life of the process).
    Gradio's own `delete_cache` task walks a set that requests keep adding to; under steady
    traffic it dies with "Set changed size during iteration" and never sweeps again (seen in this
    project's tests with Gradio 6.31), so facegan sweeps by file age itself."""

    def __init__(
        self, folder: Path, every_s: float = CACHE_SWEEP_S, age_s: float = CACHE_AGE_S, max_bytes: int = CACHE_BYTES
    ):
        self.folder = folder
        self.every_s = every_s
        self.age_s = age_s
        self.max_bytes = max_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facegan-cache-sweeper", daemon=True)

    def start(self) -> CacheSweeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sweep()

    def sweep(self) -> None:
        """Delete what is older than age_s, then the oldest files until max_bytes are left."""
        cutoff = time.time() - self.age_s
        kept = []  # (mtime, size, path) of what is left
        for root, _, names in os.walk(self.folder, topdown=False):  # os.walk skips what vanishes meanwhile
            for name in names:
                path = Path(root, name)
                with contextlib.suppress(OSError):  # gone meanwhile
                    info = path.stat()
                    if info.st_mtime < cutoff:
                        path.unlink()
                    else:
                        kept.append((info.st_mtime, info.st_size, path))
            # An empty folder goes only once it is as old as a file would have to be: Gradio makes a
            # file's folder first and writes the file into it next, and a sweep between the two
            # once removed the new folder under it (the write failed: FileNotFoundError in the
            # suite). Deleting a file makes its folder new again, so a later sweep removes it.
            if Path(root) != self.folder:
                with contextlib.suppress(OSError):  # not empty (yet), or gone
                    if Path(root).stat().st_mtime < cutoff:
                        Path(root).rmdir()
        total = sum(size for _, size, _ in kept)
        for _, size, path in sorted(kept):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
            with contextlib.suppress(OSError):  # Gradio's one-file folder, now empty
                if path.parent != self.folder:
                    path.parent.rmdir()

    def stop(self) -> None:
        self._stop.set()


def sweep_gradio_cache(every_s: float = CACHE_SWEEP_S, age_s: float = CACHE_AGE_S) -> CacheSweeper:
    """Start sweeping Gradio's cache folder (every image the app sent, every upload)."""
    return CacheSweeper(Path(get_upload_folder()), every_s, age_s).start()


def prune_downloads(*folders: Path) -> None:
    """Keep the newest KEEP_DOWNLOADS downloads and the newest KEEP_DOWNLOADS copies Gradio made of
    them (Gradio's cache sweep does not track those copies); the older ones are deleted."""
    found = []
    for folder in folders:
        for root, _, names in os.walk(folder):  # os.walk skips folders the sweeper removes meanwhile
            for name in names:
                if name.startswith(DOWNLOAD_PREFIX):
                    path = Path(root, name)
                    with contextlib.suppress(OSError):  # gone meanwhile: the sweeper, another request
                        found.append((path.stat().st_mtime, path))
    for _, old in sorted(found)[: -2 * KEEP_DOWNLOADS]:
        old.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # Gradio's one-file folder, now empty
            if old.parent not in folders:
                old.parent.rmdir()


def pinned_version(choice) -> int | None:
    """The version the Model tab's selector pins requests to; None for the server's latest."""
    if choice in (None, "", LATEST):
        return None
    return whole_number(choice, "version", 1, 2**63 - 1)


def names_its_field(component):
    """Give a numeric input a message that names the field for a non-numeric payload (an API call
    can send any JSON), instead of Gradio's generic "upstream app raised an exception". (An
    instance attribute, not a subclass: Gradio writes a .pyi stub next to any module that
    subclasses one of its components.)"""
    preprocess = component.preprocess

    def checked(payload):
        if payload is not None and not isinstance(payload, int | float):
            try:
                payload = float(payload)
            except (TypeError, ValueError):
                message = f"{component.label} must be a number, got {str(payload)[:40]!r}"
                raise gr.Error(message, print_exception=False) from None
        return preprocess(payload)

    component.preprocess = checked
    return component


def number_input(**kwargs) -> gr.Number:
    return names_its_field(gr.Number(**kwargs))


def slider_input(*args, **kwargs) -> gr.Slider:
    return names_its_field(gr.Slider(*args, **kwargs))


def _display_scale(faces: Faces) -> int:
    """Strip and GIF show small faces at >= 128 px (the gallery enlarges its images by itself)."""
    return max(1, 128 // faces.images.shape[1])


def _gallery(faces: Faces) -> list[tuple[np.ndarray, str]]:
    return list(zip(faces.images, faces.captions))


def _handler(fn):
    """DemoError -> gr.Error: a readable message in the page; the app keeps running."""

    if inspect.isgeneratorfunction(fn):  # a handler that shows a status first, then its answer

        @functools.wraps(fn)
        def steps(*args):
            try:
                yield from fn(*args)
            except DemoError as e:
                raise gr.Error(str(e), print_exception=False) from None

        return steps

    @functools.wraps(fn)  # keeps the parameter names for the API page and gradio_client
    def wrapper(*args):
        try:
            return fn(*args)
        except DemoError as e:
            raise gr.Error(str(e), print_exception=False) from None

    return wrapper


class Handlers:
    """What the widgets call: each method turns widget values into a FaceSource call and its answer
    into widget values. Downloads (grid PNGs, GIFs) go to `out`."""

    def __init__(self, source: FaceSource, out: Path):
        self.source = source
        self.out = out

    def save(self, name: str, faces: Faces, suffix: str = ".png") -> str:
        path = self.out / f"{DOWNLOAD_PREFIX}{name}-{time.time_ns()}{suffix}"
        if suffix == ".gif":
            images.save_gif(path, list(images.enlarge(faces.images, _display_scale(faces))), ms_per_frame=120)
        else:
            images.save_png(path, images.auto_grid(faces.images))
        prune_downloads(self.out, Path(get_upload_folder()))
        return str(path)

    def status(self, faces: Faces, started: float) -> str:
        return (
            f"{len(faces.images)} faces from **{self.source.model}** version {faces.version} "
            f"at `{self.source.address}` in {time.perf_counter() - started:.2f} s"
        )

    @_handler
    def generate(self, seed, count, truncation, version):
        started = time.perf_counter()
        faces = self.source.seeds(seed, count, truncation, pinned_version(version))
        return _gallery(faces), self.save("faces", faces), self.status(faces, started)

    @_handler
    def interpolate(self, seed_a, seed_b, steps, version, from_found=False, found=None):
        started = time.perf_counter()
        z_from = _found_z(from_found, found)
        faces = self.source.interpolate(seed_a, seed_b, steps, pinned_version(version), z_from=z_from)
        strip = images.grid(images.enlarge(faces.images, _display_scale(faces)), 1, len(faces.images), margin=2)
        return strip, self.save("interpolation", faces, ".gif"), self.status(faces, started)

    @_handler
    def explore(self, seed, dim, lo, hi, steps, version, from_found=False, found=None):
        started = time.perf_counter()
        z_base = _found_z(from_found, found)
        faces = self.source.explore(seed, dim, lo, hi, steps, pinned_version(version), z_base=z_base)
        return _gallery(faces), self.status(faces, started)

    @_handler
    def project(self, photo, steps, version):
        started = time.perf_counter()
        # said before the wait: the first projection on a server also starts its process
        yield gr.skip(), gr.skip(), PROJECTING, gr.skip()
        target, result, answered = self.source.project(photo, steps, pinned_version(version))
        scale = max(1, 256 // target.shape[0])
        text = (
            f"pixel MSE **{result.loss:.5f}** (pixels in [0, 1]) after {int(steps)} steps, model version {answered}, "
            f"in {time.perf_counter() - started:.2f} s. *Use this z* sends the face to Interpolate and Explore z."
        )
        yield images.enlarge(target[None], scale)[0], images.enlarge(result.image[None], scale)[0], text, result.z

    def use_found(self, found):
        if found is None:
            raise gr.Error("no face found yet: project a photo first", print_exception=False)
        return True, True, gr.Tabs(selected="interpolate")

    def model_info(self):
        """The Model tab; a failure is shown in the panel itself (it also runs when the page loads)."""
        where = f"**Server** `{self.source.address}` · **model** `{self.source.model}`"
        try:
            info = self.source.model_info()
        except DemoError as e:
            return f"{where}\n\n⚠️ {e}", gr.Dropdown()
        rows = "\n".join(f"| {v.version} | {v.state} | {v.error or ''} |" for v in info["versions"])
        sigs = "\n".join(
            f"| `{name}` | {_tensors(s['inputs'])} | {_tensors(s['outputs'])} |"
            for name, s in info["signatures"].items()
        )
        text = (
            f"{where} · latest version **{info['version']}**\n\n"
            f"| version | state | error |\n|---|---|---|\n{rows}\n\n"
            f"| signature | inputs | outputs |\n|---|---|---|\n{sigs}"
        )
        choices = [LATEST] + [str(v.version) for v in info["versions"] if v.state == "AVAILABLE"]
        return text, gr.Dropdown(choices=choices)

    def random_seed(self):
        return random.SystemRandom().randint(0, MAX_SEED)


def _found_z(from_found: bool, found):
    """The found face's z when the tab's checkbox asks for it (None: start from the seed)."""
    if not from_found:
        return None
    if found is None:
        raise DemoError("no face found yet: project a photo under Find a face first")
    return found


def build_app(source: FaceSource, out_dir: str | None = None) -> gr.Blocks:
    """The app: one tab a function, each building its widgets and wiring its own events. `out_dir`
    holds the downloads. Gradio's cache is swept by `sweep_gradio_cache`, which `facegan demo` starts."""
    handlers = Handlers(source, Path(out_dir or tempfile.mkdtemp(prefix="facegan-demo-")))
    with gr.Blocks(title="facegan") as app:
        gr.Markdown("# facegan\nFaces from a DCGAN, rendered by a TensorFlow Serving server (gRPC or REST).")
        found = gr.State(None)  # the z of the last projected photo (this browser session's)
        # the Model tab's version selector: every tab's requests read it, so it exists before them
        version = gr.Dropdown(
            [LATEST], value=LATEST, label="pin requests to version", allow_custom_value=False, render=False
        )
        with gr.Tabs() as tabs:
            generate_tab(app, handlers, version)
            interp_found = interpolate_tab(handlers, version, found)
            explore_found = explore_tab(handlers, version, found)
            find_tab(handlers, version, found, use_targets=[interp_found, explore_found, tabs])
            model_tab(app, handlers, version)
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return app


def generate_tab(app: gr.Blocks, handlers: Handlers, version: gr.Dropdown) -> None:
    """Faces for seed, seed+1, …; the page opens with the first eight already there."""
    with gr.Tab("Generate", id="generate"):
        with gr.Row():
            seed = number_input(value=0, label=f"seed (0 … {MAX_SEED})", elem_id="seed")
            dice = gr.Button("random seed", elem_id="dice", scale=0, min_width=120)
            count = slider_input(1, MAX_FACES, value=8, step=1, label="faces (seed, seed+1, …)")
            truncation = slider_input(0.0, 1.0, value=1.0, step=0.05, label="truncation ψ (scales z)")
        go = gr.Button("Generate", variant="primary", elem_id="generate")
        status = gr.Markdown(elem_id="status")
        gallery = gr.Gallery(label="faces", columns=8, height=360, format="png", elem_id="gallery")
        grid_file = gr.File(label="grid as PNG")
    inputs = [seed, count, truncation, version]
    outputs = [gallery, grid_file, status]
    go.click(handlers.generate, inputs, outputs, api_name="generate")
    dice.click(handlers.random_seed, None, seed, api_name="random_seed").then(
        handlers.generate, inputs, outputs, api_visibility="private"
    )
    app.load(handlers.generate, inputs, outputs, api_visibility="private")


def interpolate_tab(handlers: Handlers, version: gr.Dropdown, found: gr.State) -> gr.Checkbox:
    """A spherical interpolation between two seeds' z (or from the found face's); returns the
    checkbox that Find a face's *Use this z* ticks."""
    with gr.Tab("Interpolate", id="interpolate"):
        with gr.Row():
            seed_a = number_input(value=0, label="from seed")
            from_found = gr.Checkbox(False, label="from the found face instead", elem_id="interp-found")
            seed_b = number_input(value=1, label="to seed")
            steps = slider_input(2, MAX_FRAMES, value=8, step=1, label="steps")
        go = gr.Button("Interpolate", variant="primary")
        status = gr.Markdown()
        strip = gr.Image(label="spherical interpolation of z", type="numpy", format="png", elem_id="strip")
        gif = gr.Image(label="as a GIF", type="filepath", elem_id="gif")
    go.click(
        handlers.interpolate,
        [seed_a, seed_b, steps, version, from_found, found],
        [strip, gif, status],
        api_name="interpolate",
    )
    return from_found


def explore_tab(handlers: Handlers, version: gr.Dropdown, found: gr.State) -> gr.Checkbox:
    """One number of z swept from `lo` to `hi` (the lecture's experiment); returns the checkbox
    that Find a face's *Use this z* ticks."""
    with gr.Tab("Explore z", id="explore"):
        gr.Markdown("Change one number of the seed vector and watch what it controls (the lecture's experiment).")
        with gr.Row():
            seed = number_input(value=0, label="seed")
            from_found = gr.Checkbox(False, label="the found face's z instead", elem_id="explore-found")
            dim = number_input(value=0, label="dimension (0 … latent_dim − 1)")
            lo = number_input(value=-3.0, label="from")
            hi = number_input(value=3.0, label="to")
            steps = slider_input(2, MAX_FRAMES, value=8, step=1, label="steps")
        go = gr.Button("Explore", variant="primary")
        status = gr.Markdown()
        gallery = gr.Gallery(label="faces", columns=8, height=360, format="png", elem_id="explore-gallery")
    go.click(
        handlers.explore,
        [seed, dim, lo, hi, steps, version, from_found, found],
        [gallery, status],
        api_name="explore",
    )
    return from_found


def find_tab(handlers: Handlers, version: gr.Dropdown, found: gr.State, use_targets: list) -> None:
    """A photo -> the closest face the model makes and its z (kept in `found`); *Use this z* ticks
    the `use_targets` checkboxes and switches to Interpolate."""
    with gr.Tab("Find a face", id="find"):
        gr.Markdown(
            "Upload a photo of a face: its centre square, at the model's resolution, is what the model looks "
            "for. The server runs gradient descent on z (the `project` signature) and sends back the closest "
            f"face it can make and its z. JPEG, PNG or WebP, up to {MAX_UPLOAD}; a few seconds (the first one "
            "on a server also starts its projection process: up to a minute more)."
        )
        with gr.Row():
            photo = gr.File(label="photo", file_types=["image"], type="filepath", elem_id="photo")
            steps = slider_input(1, PROJECT_MAX_STEPS, value=PROJECT_STEPS, step=1, label="optimisation steps")
        gr.Examples(  # faces that ship with facegan: nothing to bring to try it
            examples=[[str(path)] for path in EXAMPLE_PHOTOS],
            inputs=[photo],
            label="or try one of these (faces from Labeled Faces in the Wild, as scikit-image ships them)",
        )
        go = gr.Button("Find the closest face", variant="primary", elem_id="project")
        status = gr.Markdown(elem_id="project-status")
        with gr.Row():
            target_image = gr.Image(label="what the model sees", format="png", elem_id="target")
            found_image = gr.Image(label="the closest face it makes", format="png", elem_id="found")
        use_z = gr.Button("Use this z in Interpolate and Explore z", elem_id="use-z")
    go.click(
        handlers.project,
        [photo, steps, version],
        [target_image, found_image, status, found],
        api_name="project",
        concurrency_limit=1,  # one projection at a time from this page: each is seconds of server work
    )
    use_z.click(handlers.use_found, found, use_targets, api_visibility="private")


def model_tab(app: gr.Blocks, handlers: Handlers, version: gr.Dropdown) -> None:
    """The server's versions and signatures, and the version every tab's requests are pinned to."""
    with gr.Tab("Model", id="model"):
        info = gr.Markdown()
        version.render()
        refresh = gr.Button("Refresh")
    refresh.click(handlers.model_info, None, [info, version], api_name="model_info")
    app.load(handlers.model_info, None, [info, version], api_visibility="private")


def _tensors(spec: dict) -> str:
    return ", ".join(f"{k}: {dtype} {shape}" for k, (dtype, shape) in spec.items())


def launch(app: gr.Blocks, host: str, port: int, **kwargs) -> None:
    """Serve the app (blocking unless prevent_thread_lock=True) with facegan's look."""
    theme = gr.themes.Soft(font=THEME_FONTS, font_mono=["ui-monospace", "monospace"])
    app.launch(server_name=host, server_port=port, theme=theme, css=CSS, quiet=True, max_file_size=MAX_UPLOAD, **kwargs)
