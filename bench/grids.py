"""Side-by-side preview grids: several runs' generators on the same z, labelled, in one PNG.

Each panel is a run's final checkpoint, its EMA generator (`ema`) or its raw one (`raw`: for an
`lfw32` run that is the `lecture` run with the same seed, see docs/quality.md), drawn on the
first run folder's preview z (runs with one seed share it), so the same face sits at the same place in
every panel. `LABEL=real` draws the real faces instead: the embedded LFW faces the runs trained on,
a random draw of them (the same for a given --real-seed), at the runs' resolution.

    python bench/grids.py --out docs/quality-grids-32px.png --cols 2 \\
        --panel "lecture, 19,200 images=runs/quality/lfw32-32px-seed0:raw" \\
        --panel "lfw32, 19,200 images=runs/quality/lfw32-32px-seed0:ema" \\
        --panel "lecture, 76,800 images=runs/quality/lfw32-4x-32px-seed0:raw" \\
        --panel "lfw32, 76,800 images=runs/quality/lfw32-4x-32px-seed0:ema"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABEL_HEIGHT = 18  # pixels above each panel for its label
ZOOM = 2  # 32 px faces are drawn 2x (nearest neighbour) so they can be seen


def panel(run_dir: Path, which: str, z: np.ndarray, rows: int, cols: int) -> np.ndarray:
    from facegan import images
    from facegan.config import Config
    from facegan.sampling import generate
    from facegan.training import checkpoints
    from facegan.training.models import build_generator

    cfg = Config.from_dict(json.loads((run_dir / "config.json").read_text()))
    generator = build_generator(cfg.model)
    newest = checkpoints.list_checkpoints(run_dir / "checkpoints")[-1]
    meta = checkpoints.restore_generator(newest, generator, ema=which == "ema")
    if which == "ema" and meta["weights"] != "generator_ema":
        raise SystemExit(f"{run_dir} kept no EMA generator")
    faces = images.enlarge(generate(generator, z[: rows * cols]), ZOOM)
    return images.grid(faces, rows, cols, margin=4)


def real_panel(res: int, seed: int, rows: int, cols: int) -> np.ndarray:
    from facegan import images
    from facegan.data.embedded import embedded_faces

    faces, _ = embedded_faces(res)
    drawn = faces[np.random.default_rng(seed).permutation(len(faces))[: rows * cols]]
    return images.grid(images.enlarge(drawn, ZOOM), rows, cols, margin=4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--panel", action="append", required=True, metavar="LABEL=RUN_DIR:ema|raw or LABEL=real")
    p.add_argument("--real-seed", type=int, default=0, help="which real faces a real panel draws")
    p.add_argument("--cols", type=int, default=2, help="panels per row")
    p.add_argument("--rows", type=int, default=4, help="faces per panel: rows x 7")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    from facegan import images

    specs = []
    for text in args.panel:
        label, _, where = text.rpartition("=")
        if label and where == "real":
            specs.append((label, None, "real"))
            continue
        run_dir, _, which = where.rpartition(":")
        if not label or which not in ("ema", "raw") or not Path(run_dir).is_dir():
            p.error(f"--panel wants LABEL=RUN_DIR:ema|raw with an existing run folder, or LABEL=real, got {text!r}")
        specs.append((label, Path(run_dir), which))
    runs = [run_dir for _, run_dir, _ in specs if run_dir is not None]
    if not runs:
        p.error("--panel: at least one run folder (the real faces are drawn at its resolution)")
    z = np.load(runs[0] / "preview_z.npy")
    res = json.loads((runs[0] / "config.json").read_text())["model"]["resolution"]
    tiles = []
    for label, run_dir, which in specs:
        if which == "real":
            grid = real_panel(res, args.real_seed, args.rows, 7)
        else:
            grid = panel(run_dir, which, z, args.rows, 7)
        canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + LABEL_HEIGHT))
        canvas.paste(Image.fromarray(grid), (0, LABEL_HEIGHT))
        ImageDraw.Draw(canvas).text((6, 3), label, fill=(255, 255, 255))
        tiles.append(np.asarray(canvas))
    rows = [tiles[i : i + args.cols] for i in range(0, len(tiles), args.cols)]
    rows[-1] += [np.zeros_like(tiles[0])] * (args.cols - len(rows[-1]))
    gap = np.full((tiles[0].shape[0], 12, 3), 64, np.uint8)  # a gray bar between panels
    lines = [np.concatenate([x for t in row for x in (t, gap)][:-1], axis=1) for row in rows]
    bar = np.full((12, lines[0].shape[1], 3), 64, np.uint8)
    out = np.concatenate([x for line in lines for x in (line, bar)][:-1], axis=0)
    images.save_png(args.out, out)
    print(f"wrote {args.out} ({out.shape[1]}x{out.shape[0]})")


if __name__ == "__main__":
    main()
