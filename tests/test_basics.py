"""Config, seed lists, image grids and atomic files: the small shared modules."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from facegan import fileio, images
from facegan.config import PRESETS, Config, preset
from facegan.errors import ConfigError, UsageError
from facegan.seeds import check_seeds, parse_seeds


def test_parse_seeds():
    assert parse_seeds("0,1,4-6") == [0, 1, 4, 5, 6]
    assert parse_seeds("7") == [7]
    assert parse_seeds(" 3 - 4 ") == [3, 4]
    for bad in ("", "a", "1,,2", "5-1", "-3", "1-2-3", "0-99999999", str(2**31)):
        with pytest.raises(ValueError):
            parse_seeds(bad)


@pytest.mark.parametrize(
    "seeds, expected",
    [
        (5, [5]),
        ([1, 2], [1, 2]),
        (range(3), [0, 1, 2]),
        (np.arange(2, dtype=np.int32), [0, 1]),
        ((np.int64(-4),), [-4]),
    ],
)
def test_check_seeds_takes_whole_numbers_as_they_are(seeds, expected):
    out = check_seeds(seeds)
    assert out.dtype == np.int64 and out.tolist() == expected


@pytest.mark.parametrize(
    "seeds, words",
    [
        ([1.5], "whole numbers, got 1.5"),
        (1.5, "got float"),
        (["7"], "got '7'"),
        ("7", "got str"),
        ([True], "got True"),
        ([[1, 2]], "got [1, 2]"),
        (np.zeros((2, 2), np.int64), "flat list"),
        (np.array([1.0]), "array of float64"),
        ([2**64], "18446744073709551616 does not fit int64"),
        ([10**5000], "of 16610 bits does not fit int64"),
        (np.array([2**63], np.uint64), "does not fit int64"),
        ([], "no seeds"),
    ],
)
def test_check_seeds_refuses_what_it_would_have_to_round_flatten_or_wrap(seeds, words):
    """The one rule for seeds (FaceClient, RestClient, LocalFaces and Run call it)."""
    with pytest.raises(UsageError, match=re.escape(words)):
        check_seeds(seeds)


def test_presets_valid_and_round_trip():
    for name, cfg in PRESETS.items():
        cfg.validate()
        assert cfg.name == name
        assert Config.from_dict(json.loads(cfg.to_json())) == cfg
    assert preset("lecture96").model.resolution == 96
    assert preset("lecture96").train.batch_size == 32 and preset("lecture96").train.epochs == 50
    with pytest.raises(ConfigError):
        preset("nope")


@pytest.mark.parametrize(
    "fields",
    [
        {"model": {"resolution": 48}},
        {"model": {"resolution": 160}},
        {"train": {"batch_size": 0}},
        {"train": {"epochs": 0}},
        {"train": {"label_smoothing": 0.7}},
        {"train": {"strategy": "tpu"}},
        {"model": {"upsample": "cubic"}},
        {"train": {"lr_decay": -0.1}},
        {"train": {"lr_decay": 1.5}},
    ],
)
def test_config_rejects(fields):
    with pytest.raises(ConfigError):
        PRESETS["lfw32"].override(**fields).validate()


def test_config_from_dict_rejects_unknown_fields():
    d = PRESETS["lfw32"].to_dict()
    d["train"]["bogus"] = 1
    with pytest.raises(ConfigError):
        Config.from_dict(d)


def test_grid_layout():
    faces = np.stack([np.full((4, 5, 3), i * 10, np.uint8) for i in range(1, 7)])
    g = images.grid(faces, rows=2, cols=3, margin=2)
    assert g.shape == (2 + 2 * 6, 2 + 3 * 7, 3)
    assert g[0].max() == 0  # top margin
    assert (g[2:6, 2:7] == 10).all() and (g[8:12, 16:21] == 60).all()
    with pytest.raises(ValueError):
        images.grid(faces, rows=1, cols=3)


def test_gif_frames(tmp_path):
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)]
    images.save_gif(tmp_path / "a.gif", frames, 50)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 3


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.json"
    fileio.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), fileio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
