"""`facegan prepare` on folders and zips, the cache format, and the CLI's one-line errors."""

import io
import zipfile

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from facegan.cli import main
from facegan.data.cache import load_dataset, save_dataset
from facegan.data.prepare import prepare
from facegan.errors import DataError


def _jpeg_bytes(w, h, mode="RGB", fmt="JPEG", color=(200, 30, 30)):
    buf = io.BytesIO()
    im = Image.new("RGB", (w, h), color)
    im.paste((10, 10, 240), (w // 4, h // 4, w // 2, h // 2))
    im.convert(mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def photo_folder(tmp_path):
    src = tmp_path / "photos"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "a.jpg").write_bytes(_jpeg_bytes(178, 218))  # CelebA's aligned size
    (src / "b.PNG").write_bytes(_jpeg_bytes(80, 60, "RGBA", "PNG"))
    (src / "nested" / "c.jpeg").write_bytes(_jpeg_bytes(50, 90, "L"))
    (src / "nested" / "deeper" / "d.jpg").write_bytes(_jpeg_bytes(120, 120, "CMYK"))
    (src / "nested" / "e.webp").write_bytes(_jpeg_bytes(64, 64, fmt="WEBP"))
    (src / "notes.txt").write_text("not an image")
    return src


def test_prepare_folder(photo_folder, tmp_path):
    out = tmp_path / "faces32.npz"
    manifest = prepare(photo_folder, 32, out, workers=2, progress=False)
    images, stored = load_dataset(out)
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
    assert stored == manifest and manifest["count"] == 5 and manifest["skipped"] == 0
    assert manifest["resolution"] == 32 and len(manifest["sha256"]) == 64
    # The CelebA-shaped red photo with a blue square keeps both colours after crop and resize.
    a = images[0].reshape(-1, 3)
    assert (a[:, 0] > 150).any() and (a[:, 2] > 150).any()


def test_prepare_celeba_style_zip_with_corrupt_file(tmp_path, capsys):
    archive = tmp_path / "img_align_celeba.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(4):
            zf.writestr(f"img_align_celeba/{i + 1:06d}.jpg", _jpeg_bytes(178, 218))
        zf.writestr("img_align_celeba/000005.jpg", _jpeg_bytes(178, 218)[:300])  # truncated
        zf.writestr("__MACOSX/img_align_celeba/._000001.jpg", b"resource fork")
    out = tmp_path / "celeba.npz"
    manifest = prepare(archive, 64, out, workers=2, progress=False)
    assert manifest["count"] == 4 and manifest["skipped"] == 1
    assert "000005.jpg" in capsys.readouterr().err
    assert load_dataset(out)[0].shape == (4, 64, 64, 3)


def test_prepare_no_usable_images(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="could be decoded"):
        prepare(tmp_path, 32, tmp_path / "out.npz", workers=1, progress=False)
    assert not (tmp_path / "out.npz").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .jpg"):
        prepare(tmp_path / "empty", 32, tmp_path / "out.npz", workers=1, progress=False)
    with pytest.raises(DataError, match="neither a folder nor a .zip"):
        prepare(tmp_path / "bad.jpg", 32, tmp_path / "out.npz", workers=1, progress=False)


def test_corrupt_cache_detected(tmp_path):
    path = tmp_path / "c.npz"
    save_dataset(path, np.zeros((3, 32, 32, 3), np.uint8), source="test")
    data = dict(np.load(path))
    data["images"] = data["images"] + 1
    np.savez(path, **data)
    with pytest.raises(DataError, match="hash"):
        load_dataset(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="corrupt"):
        load_dataset(path)


def _one_line_error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2, err
    assert len(err) == 1 and "error" in err[0] and "Traceback" not in err[0], err
    return err[0]


def test_cli_errors(capsys, tmp_path):
    assert "multiple of 32" in _one_line_error(capsys, ["train", "--res", "48"])
    assert "batch size" in _one_line_error(capsys, ["train", "--batch-size", "0"])
    assert "dropout must be in [0, 1)" in _one_line_error(capsys, ["train", "--dropout", "1.5"])
    assert "does not exist" in _one_line_error(capsys, ["train", "--data", str(tmp_path / "none.npz")])
    assert "does not exist" in _one_line_error(capsys, ["train", "--resume", str(tmp_path / "nope")])
    assert "only epochs" in _one_line_error(capsys, ["train", "--resume", str(tmp_path), "--res", "64"])
    assert "seed" in _one_line_error(capsys, ["sample", "--run", str(tmp_path), "--seeds", "x", "--out", "o"])
    assert "not a run folder" in _one_line_error(
        capsys, ["sample", "--run", str(tmp_path), "--seeds", "1", "--out", str(tmp_path / "o")]
    )
    assert "does not exist" in _one_line_error(capsys, ["prepare", "--src", str(tmp_path / "x"), "--out", "o.npz"])
    assert "unrecognized" in _one_line_error(capsys, ["train", "--bogus"])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 broken")
    assert "corrupt" in _one_line_error(capsys, ["train", "--data", str(corrupt), "--run-dir", str(tmp_path / "r")])


def test_help_shows_examples():
    from facegan.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # every subcommand, new ones included
    assert {"prepare", "train", "sample", "export", "evaluate", "serve", "generate", "status", "demo"} <= set(commands)
    for cmd in ([], *([c] for c in commands)):
        res = run_cli(*cmd, "--help")
        assert res.returncode == 0 and "examples:" in res.stdout and "facegan " in res.stdout, cmd


@pytest.mark.slow
def test_sample_writes_seed_pngs(trained_run, tmp_path):
    from facegan.images import load_png

    res = run_cli("sample", "--run", trained_run, "--seeds", "0,1,4-6", "--out", tmp_path, "--grid")
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0004.png", "seed0005.png", "seed0006.png"]
    a, b = load_png(tmp_path / "seed0004.png"), load_png(tmp_path / "seed0005.png")
    assert a.shape == (32, 32, 3) and not np.array_equal(a, b)
    again = tmp_path / "again"
    assert run_cli("sample", "--run", trained_run, "--seeds", "5", "--out", again).returncode == 0
    np.testing.assert_array_equal(load_png(again / "seed0005.png"), b)


def _pillow_face(data: bytes, res: int) -> np.ndarray:
    """The reference: Pillow alone (draft decode, centre crop, Lanczos), one image at a time."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (res, res))
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        return np.asarray(im.crop(box).resize((res, res), Image.Resampling.LANCZOS))


def test_resize_matches_pillow_lanczos():
    from skimage.data import astronaut

    from facegan.data.resize import resize_squares

    photo = astronaut()[:300, 100:400]  # 300x300 RGB
    noise = np.random.default_rng(0).integers(0, 256, (3, 45, 45, 3), dtype=np.uint8)  # worst case: clipping
    for batch in (np.stack([photo, photo[::-1], photo[:, ::-1]]), noise):
        for res in (16, 32, 64, 96, 300, 512):  # down, equal and up
            ours = resize_squares(batch, res)
            assert ours.shape == (len(batch), res, res, 3) and ours.dtype == np.uint8
            ref = np.stack([np.asarray(Image.fromarray(b).resize((res, res), Image.Resampling.LANCZOS)) for b in batch])
            diff = np.abs(ours.astype(int) - ref)
            assert diff.max() <= 1 and diff.mean() < 0.05, (res, diff.max(), diff.mean())


def test_prepare_matches_pillow_and_is_thread_count_independent(tmp_path):
    from skimage.data import astronaut, chelsea

    src = tmp_path / "faces"
    src.mkdir()
    photos = {
        "a.jpg": astronaut()[:218, :178],
        "b.jpg": chelsea()[:218, :178],  # CelebA-sized
        "c.jpg": astronaut()[:300, 50:500],  # wide
        "d.jpg": np.repeat(astronaut()[:512, :512], 2, axis=0).repeat(2, axis=1),
    }  # > 4x res after draft
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(src / name, quality=90)
    Image.fromarray(chelsea()).convert("L").save(src / "e.jpg")  # gray JPEG
    Image.fromarray(chelsea()).convert("CMYK").save(src / "f.jpg")  # CMYK JPEG: Pillow's path
    for workers in (1, 3):
        prepare(src, 32, tmp_path / f"w{workers}.npz", workers=workers, progress=False)
    one, three = load_dataset(tmp_path / "w1.npz")[0], load_dataset(tmp_path / "w3.npz")[0]
    np.testing.assert_array_equal(one, three)
    for got, name in zip(one, sorted(p.name for p in src.iterdir())):
        diff = np.abs(got.astype(int) - _pillow_face((src / name).read_bytes(), 32))
        # Same decoder settings, so only the resize's rounding differs: one level at most.
        assert diff.max() <= 1 and diff.mean() < 0.05, (name, diff.max(), diff.mean())


def test_streamed_cache_writes_all_or_nothing(tmp_path):
    from facegan.data.cache import write_dataset

    chunks = [np.full((2, 8, 8, 3), i, np.uint8) for i in range(3)]
    manifest = write_dataset(tmp_path / "ok.npz", iter(chunks), 6, 8, source="test")
    images, stored = load_dataset(tmp_path / "ok.npz")
    assert stored == manifest and images.shape == (6, 8, 8, 3) and images[4].max() == 2
    assert write_dataset(tmp_path / "short.npz", iter(chunks), 7, 8, source="test") is None
    with pytest.raises(ValueError, match="expected uint8"):
        write_dataset(tmp_path / "bad.npz", [np.zeros((2, 8, 8, 1), np.uint8)], 2, 8, source="test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.npz"]  # no partial or temporary files
