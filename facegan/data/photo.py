"""One photo -> one face-sized square, by `facegan prepare`'s exact pipeline (decode with a JPEG
draft scale, centre square, Lanczos-3 to the model's resolution): what `facegan project` and the
demo's Find-a-face tab send to the model. Bad input is one readable DataError."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facegan.data.prepare import load_chunk
from facegan.errors import DataError

MAX_PHOTO_BYTES = 20 * 2**20  # a phone photo is 2-8 MB
MIN_SIDE = 16  # smaller photos hold too little of a face to project
MAX_PIXELS = 64 * 2**20  # width x height of a JPEG, which decodes at 1/8 scale (a draft): ~1 MP in memory
# Other formats decode at full size, ~17 bytes of peak memory per pixel through the resize (an
# 8190x8190 PNG took the demo from 182 MB to 1,134 MB): 16 MP, a large phone photo, costs ~280 MB.
MAX_FULL_DECODE_PIXELS = 16 * 2**20


def check_photo(data: bytes) -> None:
    """DataError unless `data` is a photo facegan can use: checked before any server is asked."""
    if len(data) > MAX_PHOTO_BYTES:
        raise DataError(f"the photo has {len(data) / 2**20:.1f} MB; at most {MAX_PHOTO_BYTES // 2**20} MB")
    try:
        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            width, height = im.size
            draft = im.format == "JPEG"
    except Image.DecompressionBombError:  # Pillow's own refusal, far above our budget
        raise DataError(f"the photo is too large: at most {MAX_PIXELS // 2**20} megapixels") from None
    except (OSError, ValueError, SyntaxError):
        raise DataError("that is not an image facegan can read (JPEG, PNG or WebP)") from None
    if min(width, height) < MIN_SIDE:
        raise DataError(f"the photo is {width}x{height} pixels; a face needs at least {MIN_SIDE}x{MIN_SIDE}")
    budget = MAX_PIXELS if draft else MAX_FULL_DECODE_PIXELS
    if width * height > budget:
        kind = "megapixels" if draft else "megapixels unless it is a JPEG"
        raise DataError(f"the photo is {width}x{height} pixels; at most {budget // 2**20} {kind}")
    _, skipped = load_chunk(lambda _name: data, ["photo"], MIN_SIDE)  # a cheap decode: JPEGs at 1/8 scale
    if skipped:
        raise DataError("the photo could not be decoded (truncated or corrupt?)")


def photo_face(data: bytes, res: int) -> np.ndarray:
    """An encoded photo (JPEG, PNG, WebP) -> uint8 [res, res, 3], or DataError saying why not."""
    check_photo(data)
    faces, skipped = load_chunk(lambda _name: data, ["photo"], res)
    if skipped:
        raise DataError("the photo could not be decoded (truncated or corrupt?)")
    return faces[0]
