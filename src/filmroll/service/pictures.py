"""What filmroll does with a picture's bytes: decide what they are (from the bytes, never a header), refuse what is
not a picture or is a decompression bomb, and render the variants a website serves (a width ladder in WebP and
AVIF, upright, metadata stripped, the colour profile kept), with a dominant colour, Behold's seven-swatch palette
and a BlurHash placeholder. Pure functions over bytes; :func:`render` is CPU work and runs in a process pool
(``service/mirror.py``).

Where the speed comes from (``bench/mirror.py`` measures it against the naive way): a JPEG is decoded at the
smallest scale its largest target allows (libjpeg's DCT scaling, ``Image.draft``), each width is resized from the
next larger one instead of from the full image, and the encoders run at settings chosen by measured size and
similarity (:data:`ENCODERS`), not at their slowest defaults.
"""

from __future__ import annotations

import colorsys
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import blurhash
from PIL import Image, ImageOps

from filmroll import errors

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
           "AVIF": "image/avif"}
# Chosen in bench/mirror.py by CPU, bytes and SSIM at 640 px (docs/benchmarks.md). WebP: method 1 takes a third of
# the default method 4's CPU for 8 % more bytes and the same SSIM (0.941 vs 0.942; method 2 was worse on both).
# AVIF: speed 9 at quality 60 takes half of speed 8's CPU and a tenth of the default's (quality 75, speed 6), at the
# same bytes and SSIM as speed 8; one encoder thread, since the rendering processes already use every core.
ENCODERS: dict[str, dict[str, object]] = {"webp": {"quality": 80, "method": 1},
                                          "avif": {"quality": 60, "speed": 9, "max_threads": 1}}
CONTENT_TYPES = {"webp": "image/webp", "avif": "image/avif", "jpg": "image/jpeg"}
DEFAULT_WIDTHS = (320, 640, 1080)
COLOUR_SIDE = 96  # the colours and the placeholder are taken from a copy this size
DEFAULT_MAX_PIXELS = 40_000_000  # 6x Instagram's largest picture (1440x1800 is 2.6 MP)


@dataclass(frozen=True)
class Identified:
    content_type: str
    width: int | None
    height: int | None
    clean: bool = True  # upright already and without EXIF or XMP: the original itself can be served as is


@dataclass(frozen=True)
class Variant:
    variant: str  # "640.webp", the media_files.variant column
    content_type: str
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Rendered:
    width: int  # upright
    height: int
    color: str  # "r,g,b"
    palette: str  # JSON of the seven swatches
    placeholder: str  # BlurHash
    variants: list[Variant] = field(default_factory=list)


def _is_video(data: bytes) -> bool:
    """An MP4/MOV file by its structure, not by a magic number: ISO boxes (size, four-letter type) that tile the
    whole file exactly, an ``ftyp`` first, a ``moov`` (what makes it playable) and an ``mdat`` among them. A file
    that only starts like one (``....ftyp``, four bytes) is not a video."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    seen: set[bytes] = set()
    at = 0
    while at < len(data):
        if len(data) - at < 8:
            return False
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if len(data) - at < 16:
                return False
            size, header = int.from_bytes(data[at + 8:at + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - at
        if size < header or at + size > len(data) or not all(32 <= c < 127 for c in kind):
            return False
        seen.add(kind)
        at += size
    return {b"moov", b"mdat"} <= seen


def identify(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Identified:
    """What the bytes are; refuses anything but a picture or an MP4, and pictures over ``max_pixels``."""
    if _is_video(data):
        return Identified("video/mp4", None, None, clean=False)
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            kind, (width, height) = image.format, image.size
            orientation = image.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):  # the size as shown, once turned upright
                width, height = height, width
            clean = orientation == 1 and not image.info.get("exif") and not image.info.get("xmp")
    except Image.DecompressionBombError:
        raise errors.DownloadRefusedError("refused a picture of absurd dimensions (a decompression bomb)") from None
    except (OSError, ValueError, SyntaxError):
        raise errors.DownloadRefusedError("refused a file that is neither a picture nor a video") from None
    if kind not in FORMATS:
        raise errors.DownloadRefusedError(f"refused a picture in an unsupported format ({kind})")
    if width * height > max_pixels:
        raise errors.DownloadRefusedError(f"refused a {width}x{height} picture: more than {max_pixels} pixels "
                                          "(a decompression bomb, or far larger than Instagram serves)")
    return Identified(FORMATS[kind], width, height, clean)


# The codecs Instagram's videos come in; any other is refused before FFmpeg decodes a byte of it (each decoder is
# attack surface, and the bytes are a stranger's).
POSTER_CODECS = frozenset({"h264", "hevc", "vp9", "av1"})


def poster(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """A JPEG of a video's first frame, upright (as its display matrix turns it): the poster of a video Instagram
    gives none for. Only an MP4 (:func:`identify`) in one of :data:`POSTER_CODECS` is decoded, and only a frame of
    at most ``max_pixels``. CPU work (and FFmpeg's): runs in the renderer's processes."""
    import av  # FFmpeg's libraries load in the processes that make posters only

    if identify(data, max_pixels=max_pixels).content_type != "video/mp4":
        raise errors.DownloadRefusedError("refused a poster from a file that is not a video")
    try:
        with av.open(io.BytesIO(data), "r", format="mp4") as container:
            if not container.streams.video:
                raise errors.DownloadRefusedError("refused a video without a picture track: no poster to make")
            stream = container.streams.video[0]
            codec, width, height = stream.codec_context.name, stream.codec_context.width, stream.codec_context.height
            if codec not in POSTER_CODECS:
                raise errors.DownloadRefusedError(f"refused a video in {codec}: posters come from "
                                                  f"{', '.join(sorted(POSTER_CODECS))} only")
            if not width or not height or width * height > max_pixels:
                raise errors.DownloadRefusedError(f"refused a {width}x{height} video: more than {max_pixels} pixels")
            frame = next(container.decode(stream), None)
            if frame is None:
                raise errors.DownloadRefusedError("refused a video without a single frame: no poster to make")
            image = frame.to_image()  # type: ignore[no-untyped-call]
            if frame.rotation:  # counterclockwise, as Pillow turns too
                image = image.rotate(frame.rotation, expand=True)
    except av.FFmpegError as exc:
        raise errors.DownloadRefusedError(f"refused a video FFmpeg cannot decode ({type(exc).__name__})") from None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


# JPEG segments that carry no picture: APP1 (EXIF: location, camera, serial numbers; XMP), APP3-APP13 (IPTC and
# others) and APP15, and comments. APP0 (JFIF), APP2 (the ICC colour profile) and APP14 (Adobe's colour transform)
# are part of how the picture looks and stay.
_METADATA_MARKERS = {0xE1, *range(0xE3, 0xEE), 0xEF, 0xFE}
_PNG_METADATA = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}


def public_copy(data: bytes) -> bytes:
    """An original as anyone on the internet may fetch it: the same picture, byte for byte where it matters, with
    location, camera and other metadata taken out (a JPEG's segments, a PNG's chunks; the orientation kept, so it
    still shows upright). Other formats, and bytes that do not parse as expected, come back as they are."""
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _strip_png(data)
    return data


def _strip_jpeg(data: bytes) -> bytes:
    kept: list[bytes] = []
    at, dropped = 2, False
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return data  # not where a marker belongs: leave it as it is
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xDA, 0xD9):  # the scan (or the end): the rest is the picture itself
            break
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2 or at + 2 + length > len(data):
            return data
        if marker in _METADATA_MARKERS:
            dropped = True
        else:
            kept.append(data[at:at + 2 + length])
        at += 2 + length
    if not dropped:
        return data
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = int(image.getexif().get(0x0112, 1))
    except (OSError, ValueError, SyntaxError):
        orientation = 1
    if orientation != 1:  # only this, so a browser still turns it upright
        exif = Image.Exif()
        exif[0x0112] = orientation
        payload = exif.tobytes()
        first = 1 if kept and kept[0][:2] == b"\xff\xe0" else 0  # after JFIF's APP0, where EXIF goes
        kept.insert(first, b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload)
    return b"\xff\xd8" + b"".join(kept) + data[at:]


def _strip_png(data: bytes) -> bytes:
    kept, at, dropped = [data[:8]], 8, False
    while at + 12 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind, end = data[at + 4:at + 8], at + 12 + length
        if end > len(data):
            return data
        if kind in _PNG_METADATA:
            dropped = True
        else:
            kept.append(data[at:end])
        at = end
        if kind == b"IEND":
            break
    return b"".join(kept) if dropped else data


def upright(data: bytes, *, largest: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The picture decoded, turned as its EXIF orientation says, in RGB (or RGBA), with its ICC profile in
    ``info``. A JPEG is decoded straight at the smallest DCT scale that still covers ``largest`` pixels of width
    (:func:`identify` first: never decode what it refuses)."""
    if identify(data, max_pixels=max_pixels).content_type == "video/mp4":
        raise errors.DownloadRefusedError("a video has no picture to render; render its poster")
    source = Image.open(io.BytesIO(data))
    icc = source.info.get("icc_profile")
    if largest and source.format == "JPEG":
        turned = source.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # width and height swap once it is upright
        scale = largest / (source.height if turned else source.width)
        if scale < 1:  # draft keeps both sides at least as asked: ask for the whole picture at that scale
            source.draft("RGB", (math.ceil(source.width * scale), math.ceil(source.height * scale)))
    image: Image.Image = ImageOps.exif_transpose(source)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "transparency" in image.info or image.mode in ("LA", "PA") else "RGB")
    image.info = {"icc_profile": icc} if icc else {}
    return image


def ladder(widths: Sequence[int], full_width: int, full_height: int) -> list[tuple[int, int]]:
    """The (width, height) of each variant of a picture, narrowest first: the ``widths`` it is at least as wide as
    (never upscaled), or its own width when it is narrower than all of them; the aspect ratio kept. Feeds name
    variants by this before they are made."""
    chosen = [w for w in sorted({w for w in widths if w > 0}) if w <= full_width] or [full_width]
    return [(w, max(1, round(full_height * w / full_width))) for w in chosen]


def render(data: bytes, *, widths: Sequence[int] = DEFAULT_WIDTHS, formats: Sequence[str] = ("webp", "avif"),
           max_pixels: int = DEFAULT_MAX_PIXELS, fallback_jpeg: bool = False) -> Rendered:
    """Every variant of one picture: each of ``widths`` no wider than the picture (never upscaled; the picture's
    own width instead when it is narrower than the smallest), in each of ``formats``; ``fallback_jpeg`` adds an
    upright, stripped JPEG at full width (for an original whose bytes need turning or carry metadata). Bytes whose
    header reads but whose body does not decode are :class:`~filmroll.errors.PictureUnreadableError`: Pillow says
    so with a bare OSError ("image file is truncated"), which far from here reads like a lost connection."""
    try:
        return _render(data, widths=widths, formats=formats, max_pixels=max_pixels, fallback_jpeg=fallback_jpeg)
    except errors.FilmrollError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        said = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise errors.PictureUnreadableError(f"the picture does not decode ({said}): its file is truncated or "
                                            "damaged") from None


def _render(data: bytes, *, widths: Sequence[int], formats: Sequence[str], max_pixels: int,
            fallback_jpeg: bool) -> Rendered:
    chosen = sorted({w for w in widths if w > 0})
    idle = not formats and not fallback_jpeg
    if idle:
        # Nothing to encode (a post past the eager ones, a hashtag's before approval): only the colours and the
        # placeholder, which come from a copy of COLOUR_SIDE pixels, so a JPEG decodes at 1/8 scale and nothing is
        # resized to a width no one gets.
        chosen = []
    image = upright(data, largest=COLOUR_SIDE if idle else max(chosen) if chosen else None, max_pixels=max_pixels)
    full = identify(data, max_pixels=max_pixels)
    full_width, full_height = full.width or image.width, full.height or image.height
    icc = image.info.get("icc_profile")
    variants: list[Variant] = []
    if fallback_jpeg:
        variants.append(_encode(image.convert("RGB"), f"{image.width}.jpg", "jpg", icc))
    current = image
    steps = [] if idle else ladder(chosen, full_width, full_height)
    for width, height in reversed(steps):  # each from the next larger one
        if current.size != (width, height):
            current = current.resize((width, height), Image.Resampling.LANCZOS,
                                     reducing_gap=None if current is image and image.width < 2 * width else 3.0)
        for fmt in formats:
            variants.append(_encode(current, f"{width}.{fmt}", fmt, icc))
    small = current.convert("RGB")
    return Rendered(full_width, full_height, *_colours(small), placeholder=_placeholder(small),
                    variants=variants)


def _encode(image: Image.Image, name: str, fmt: str, icc: bytes | None) -> Variant:
    out = io.BytesIO()
    options = dict(ENCODERS.get(fmt, {"quality": 85, "optimize": True}))
    if icc:
        options["icc_profile"] = icc
    if fmt == "jpg" and image.mode != "RGB":
        image = image.convert("RGB")
    image.save(out, format={"jpg": "JPEG"}.get(fmt, fmt.upper()), **options)
    return Variant(name, CONTENT_TYPES[fmt], out.getvalue(), image.width, image.height)


def _placeholder(image: Image.Image) -> str:
    """A BlurHash of 4x3 components, from a 24-pixel copy (the components are that coarse, at most two cosine
    periods across: more pixels change nothing visible and cost the pure-Python encoder in proportion)."""
    thumb = image.convert("RGB")
    thumb.thumbnail((24, 24))
    data, width = thumb.tobytes(), thumb.width
    rows = [[tuple(data[3 * (y * width + x):3 * (y * width + x) + 3]) for x in range(width)]
            for y in range(thumb.height)]
    return str(blurhash.encode(rows, components_x=4, components_y=3))


# node-vibrant's targets (Behold's swatch names): (name, luma min, target, max, saturation min, target, max).
_TARGETS = (("vibrantDark", 0.0, 0.26, 0.45, 0.35, 1.0, 1.0), ("vibrant", 0.3, 0.5, 0.7, 0.35, 1.0, 1.0),
            ("vibrantLight", 0.55, 0.74, 1.0, 0.35, 1.0, 1.0), ("mutedDark", 0.0, 0.26, 0.45, 0.0, 0.3, 0.4),
            ("muted", 0.3, 0.5, 0.7, 0.0, 0.3, 0.4), ("mutedLight", 0.55, 0.74, 1.0, 0.0, 0.3, 0.4))


def _colours(image: Image.Image) -> tuple[str, str]:
    """The dominant colour and the seven swatches, each ``"r,g,b"``, from a 16-colour median cut of the picture."""
    thumb = image.copy()
    thumb.thumbnail((COLOUR_SIDE, COLOUR_SIDE))
    quantized = thumb.quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    flat = quantized.getpalette() or []
    swatches: list[tuple[int, tuple[int, ...]]] = sorted(
        ((count, tuple(flat[3 * cast(int, i):3 * cast(int, i) + 3])) for count, i in (quantized.getcolors() or [])),
        reverse=True)
    dominant = swatches[0][1]
    most = swatches[0][0]
    palette: dict[str, tuple[int, ...]] = {"dominant": dominant}
    for name, luma_min, luma, luma_max, sat_min, sat, sat_max in _TARGETS:
        best: tuple[int, ...] | None = None
        best_score = -1.0
        for count, rgb in swatches:
            hue, light, saturation = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
            if luma_min <= light <= luma_max and sat_min <= saturation <= sat_max:
                score = 3 * (1 - abs(saturation - sat)) + 6.5 * (1 - abs(light - luma)) + 0.5 * count / most
                if score > best_score:
                    best, best_score = rgb, score
        if best is None:  # none in range: the dominant colour moved to the target's lightness and saturation
            hue, _, _ = colorsys.rgb_to_hls(*(c / 255 for c in dominant))
            best = tuple(round(c * 255) for c in colorsys.hls_to_rgb(hue, luma, sat if sat < 1 else 0.7))
        palette[name] = best
    as_text = {name: ",".join(str(int(c)) for c in rgb) for name, rgb in palette.items()}
    return as_text["dominant"], json.dumps(as_text, separators=(",", ":"))
