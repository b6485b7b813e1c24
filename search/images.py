"""Reading an uploaded query image: bounded in bytes and pixels before it is decoded.

Untrusted input: an uploaded image is bounded in bytes and in pixels (checked on the header,
before decoding, so a 20000x20000 PNG of a few hundred bytes is refused without allocating
1.2 GB), and only the formats named below ever reach a decoder.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from search.errors import ImageTooLargeError, SearchInputError, UnsupportedImageError

# An uploaded query image is untrusted. 20 MB holds any phone photo as JPEG; 50 megapixels is an
# 8K frame with room to spare. Both are checked before the pixels are decoded.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000
MIN_IMAGE_SIDE = 16  # pixels: below this there is no person to see

ImageInput = np.ndarray | bytes | bytearray | memoryview | str | os.PathLike | IO[bytes]


def read_upload(source: ImageInput) -> bytes:
    """The upload's bytes, refusing anything over MAX_IMAGE_BYTES before reading it all."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise SearchInputError(f"image file not found: {path}")
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageTooLargeError(
                f"image file {path.name} is {size / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES / 2**20:.0f} MB"
            )
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(MAX_IMAGE_BYTES + 1)
        if not isinstance(data, bytes | bytearray):
            raise SearchInputError("the uploaded file did not yield bytes")
        data = bytes(data)
    else:
        raise SearchInputError(f"cannot read an image from a {type(source).__name__}")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLargeError(
            f"the image is larger than {MAX_IMAGE_BYTES / 2**20:.0f} MB: upload a smaller photo or a crop of the person"
        )
    if not data:
        raise SearchInputError("the uploaded file is empty")
    return data


def check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(
            f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels: downscale it or crop the person"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise SearchInputError(
            f"the image is {width}x{height} pixels: too small to show a person (at least {MIN_IMAGE_SIDE} px a side)"
        )


# Magic numbers of the formats we accept. Anything else is refused before any decoder sees it.
_IMAGE_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WEBP"),
)


def _image_format(data: bytes) -> str | None:
    for offset, magic, name in _IMAGE_SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def _pil_open() -> Callable[..., Any]:
    """PIL's own `Image.open`, not ultralytics' replacement of it.

    Importing ultralytics swaps `PIL.Image.open` for a wrapper that, on a file PIL cannot identify,
    tries to pip-install pi-heif at run time. An uploaded file must never trigger an install.
    """
    import sys

    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None) if patches is not None else None
    return original if callable(original) else Image.open


def decode_image(source: ImageInput) -> np.ndarray:
    """An uploaded image (bytes, path, file object or array) as a BGR uint8 array, within the limits.

    The format is checked on its magic number and the size on its header (PIL opens lazily), so an
    oversized image is refused before its pixels are decoded; then OpenCV decodes it, applying
    the EXIF orientation of phone photos.
    """
    if isinstance(source, np.ndarray):
        return _as_bgr(source)
    data = read_upload(source)
    kind = _image_format(data)
    if kind is None:
        raise UnsupportedImageError(
            "the upload is not an image that can be read (use a JPEG, PNG, WebP, BMP or TIFF photo)"
        )
    from PIL import Image

    open_image = _pil_open()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_image(io.BytesIO(data), formats=[kind]) as header:
                width, height = header.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"the image is too large to decode safely ({exc}); the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
        ) from None
    except (OSError, ValueError, SyntaxError, struct.error, IndexError, TypeError):  # UnidentifiedImageError: OSError
        raise SearchInputError(f"the {kind} image is corrupt: its header cannot be read") from None
    check_pixels(width, height)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # a format PIL knows and OpenCV does not (GIF), or a truncated file
        try:
            with open_image(io.BytesIO(data), formats=[kind]) as pil:
                image = cv2.cvtColor(np.asarray(pil.convert("RGB")), cv2.COLOR_RGB2BGR)
        except (OSError, ValueError, SyntaxError, struct.error, IndexError, TypeError):
            raise SearchInputError("the image file is corrupt or truncated: its pixels cannot be decoded") from None
    return image


def _as_bgr(array: np.ndarray) -> np.ndarray:
    """Accept grey, BGR and BGRA uint8 arrays (what OpenCV produces)."""
    if array.dtype != np.uint8:
        raise SearchInputError(f"the image array must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    elif not (array.ndim == 3 and array.shape[2] == 3):
        raise SearchInputError(f"the image array must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    check_pixels(array.shape[1], array.shape[0])
    return np.ascontiguousarray(array)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit a size x size grey canvas (top-left aligned), and the scale used."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    resized = cv2.resize(
        image,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    canvas = np.full((size, size, 3), 114, np.uint8)  # YOLO's padding grey
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas, scale

