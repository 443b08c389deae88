"""Variants from real pictures: they decode, keep the aspect ratio, are never upscaled, and are upright."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from filmroll import errors
from filmroll.sandbox.cdn import draw
from filmroll.service import pictures


def _jpeg_with_orientation(size: tuple[int, int], orientation: int) -> bytes:
    """A picture whose left half is red and right half blue, stored sideways with an EXIF orientation tag."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def test_every_variant_decodes_keeps_the_aspect_ratio_and_is_never_upscaled():
    data = draw("1790_n.jpg", (1080, 1350))
    rendered = pictures.render(data, widths=(320, 640, 1080, 2048))
    assert (rendered.width, rendered.height) == (1080, 1350)
    names = [v.variant for v in rendered.variants]
    assert names == ["1080.webp", "1080.avif", "640.webp", "640.avif", "320.webp", "320.avif"]  # no 2048
    for variant in rendered.variants:
        decoded = Image.open(io.BytesIO(variant.data))
        decoded.load()
        assert decoded.format == variant.variant.split(".")[1].upper()
        assert decoded.size == (variant.width, variant.height) and variant.width <= 1080
        assert abs(variant.width / variant.height - 1080 / 1350) < 0.01
        assert not decoded.getexif()  # metadata stripped


def test_a_picture_narrower_than_every_width_gets_its_own_width_only():
    rendered = pictures.render(draw("small_n.jpg", (150, 150)), widths=(320, 640), formats=("webp",))
    assert [(v.variant, v.width, v.height) for v in rendered.variants] == [("150.webp", 150, 150)]


def test_exif_orientation_6_comes_out_upright():
    data = _jpeg_with_orientation((400, 200), 6)  # stored landscape; shown portrait, rotated 90° clockwise
    assert pictures.identify(data) == pictures.Identified("image/jpeg", 200, 400, clean=False)
    rendered = pictures.render(data, widths=(100,), formats=("webp",), fallback_jpeg=True)
    assert (rendered.width, rendered.height) == (200, 400)
    for variant in rendered.variants:
        image = Image.open(io.BytesIO(variant.data)).convert("RGB")
        assert image.height > image.width and image.getexif().get(0x0112) is None
        # Rotated clockwise, the stored left half (red) is now on top.
        top, bottom = image.getpixel((image.width // 2, 5)), image.getpixel((image.width // 2, image.height - 5))
        assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_colours_palette_and_placeholder():
    rendered = pictures.render(draw("c_n.jpg", (1080, 1080)), widths=(320,), formats=("webp",))
    import json

    palette = json.loads(rendered.palette)
    assert set(palette) == {"dominant", "vibrant", "vibrantDark", "vibrantLight", "muted", "mutedDark", "mutedLight"}
    assert all(len(v.split(",")) == 3 and all(0 <= int(c) <= 255 for c in v.split(",")) for v in palette.values())
    assert rendered.color == palette["dominant"] and 20 <= len(rendered.placeholder) <= 40


def test_not_a_picture_and_a_decompression_bomb_are_refused_from_their_bytes():
    with pytest.raises(errors.DownloadRefusedError, match="neither a picture"):
        pictures.identify(b"<html>hello</html>")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 MP in a few kilobytes
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(errors.DownloadRefusedError, match="decompression bomb"):
        pictures.identify(bomb.getvalue())
    # A video by its box structure (ftyp, moov, mdat tiling the file), never by a four-byte magic number.
    from filmroll.sandbox.cdn import film

    video = film("1_n.mp4", (1080, 1920))
    ftyp = int.from_bytes(video[:4], "big")
    assert pictures.identify(video).content_type == "video/mp4"
    for fake in (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 20,  # only the magic (once taken for a video)
                 video[:-3],  # its last box cut short
                 video[:ftyp] + b"\x00\x00\x00\x10mdatfilmroll",  # no moov: nothing to play
                 video + b"<html>"):  # trailing bytes that are no box
        with pytest.raises(errors.DownloadRefusedError, match="neither a picture"):
            pictures.identify(fake)


@pytest.mark.parametrize(("stored", "orientation", "largest", "decoded"), [
    ((1080, 1350), 1, 320, (540, 675)),  # half size still covers 320: decoded at that DCT scale
    ((1440, 1800), 1, 320, (360, 450)),
    ((1440, 1800), 1, 1080, (1440, 1800)),  # half size (720) would not cover 1080
    ((1350, 1080), 6, 320, (540, 675)),  # stored sideways: the width it is shown at is the stored height
    ((1080, 1350), 1, 2048, (1080, 1350)),  # never larger than stored
])
def test_a_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_width_asked_for(stored, orientation, largest,
                                                                                 decoded):
    data = _jpeg_with_orientation(stored, orientation) if orientation != 1 else draw("1790_n.jpg", stored)
    assert pictures.upright(data, largest=largest).size == decoded


def _with_metadata(fmt: str, orientation: int = 1) -> bytes:
    image = Image.effect_noise((320, 240), 30).convert("RGB")
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0xA431] = "Canon", "EOS R5", "SERIAL-4242"  # make, model, body serial
    if orientation != 1:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})  # a place
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", exif=exif.tobytes(), comment=b"shot at home")
    else:
        from PIL.PngImagePlugin import PngInfo

        text = PngInfo()
        text.add_text("Location", "48.858, 2.294")
        image.save(out, "PNG", exif=exif.tobytes(), pnginfo=text)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "orientation"), [("JPEG", 1), ("JPEG", 6), ("PNG", 1)])
def test_an_original_is_served_without_its_location_camera_or_comments(fmt, orientation):
    original = _with_metadata(fmt, orientation)
    assert b"Canon" in original and b"SERIAL-4242" in original
    public = pictures.public_copy(original)
    for secret in (b"Canon", b"EOS R5", b"SERIAL-4242", b"shot at home", b"48.858"):
        assert secret not in public, secret
    with Image.open(io.BytesIO(public)) as shown, Image.open(io.BytesIO(original)) as stored:
        assert shown.getexif().get_ifd(0x8825) == {}  # no GPS
        assert shown.getexif().get(0x0112, 1) == orientation  # still shown upright
        assert shown.size == stored.size and shown.tobytes() == stored.tobytes()  # the same picture, not re-encoded
    assert pictures.public_copy(public) == public  # nothing left to take out: the same bytes
    clean = io.BytesIO()
    Image.new("RGB", (8, 8)).save(clean, "JPEG")
    assert pictures.public_copy(clean.getvalue()) == clean.getvalue()


def _video(picture: Image.Image, codec: str = "libx264", *, turned: bool = False) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = *picture.size, "yuv420p"
        for packet in [*stream.encode(av.VideoFrame.from_image(picture)), *stream.encode()]:
            container.mux(packet)
    data = out.getvalue()
    if turned:  # a phone's portrait video: stored sideways, the track header's matrix turns it 90° clockwise
        at = data.index(b"tkhd") - 4 + 8 + 4 + 4 * 5 + 8 + 8
        matrix = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
        data = data[:at] + b"".join(v.to_bytes(4, "big", signed=True) for v in matrix) + data[at + 36:]
    return data


def test_a_poster_is_the_videos_first_frame_upright():
    halves = Image.new("RGB", (320, 160), (220, 30, 30))
    halves.paste((30, 30, 220), (160, 0, 320, 160))  # red on the left, blue on the right
    made = Image.open(io.BytesIO(pictures.poster(_video(halves))))
    assert made.format == "JPEG" and made.size == (320, 160)
    assert made.getpixel((40, 80))[0] > 180 and made.getpixel((280, 80))[2] > 180
    turned = Image.open(io.BytesIO(pictures.poster(_video(halves, turned=True))))
    assert turned.size == (160, 320)  # turned clockwise: the left (red) half is now on top
    assert turned.getpixel((80, 40))[0] > 180 and turned.getpixel((80, 280))[2] > 180


def test_a_poster_is_made_only_from_a_video_it_may_decode():
    picture = Image.new("RGB", (320, 160), (90, 90, 90))
    with pytest.raises(errors.DownloadRefusedError, match="not a video"):
        pictures.poster(_jpeg_with_orientation((320, 160), 1))
    with pytest.raises(errors.DownloadRefusedError, match="in mpeg4: posters come from"):
        pictures.poster(_video(picture, "mpeg4"))
    with pytest.raises(errors.DownloadRefusedError, match="320x160 video: more than 10000 pixels"):
        pictures.poster(_video(picture), max_pixels=10_000)
