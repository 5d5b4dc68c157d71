"""Image reading (errors and mode conversions), geometry, PNG output, sample pictures."""

import json
import os
import warnings

import image_files
import numpy as np
import pytest
from PIL import Image, ImageFile

from stylejax._src import image_ops
from stylejax._src.errors import UserError
from stylejax._src.files import images

LEVEL = 1.0 / 255.0  # one 8-bit step
EPS = 1e-6


def _assert_colour(region, rgb, atol):
    """Every pixel of ``region`` is within ``atol`` of the colour ``rgb``."""
    region = np.asarray(region)
    np.testing.assert_allclose(
        region, np.broadcast_to(np.asarray(rgb, float), region.shape), atol=atol
    )


def _rgb(image):
    """Asserts the load_image contract (float32, (H, W, 3), [0, 1]) and returns the array."""
    assert image.dtype == np.float32
    assert image.ndim == 3
    assert image.shape[2] == 3
    assert float(image.min()) >= 0.0
    assert float(image.max()) <= 1.0
    return image


def _gradient(height=24, width=32):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], -1).astype(
        np.uint8
    )


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.jpg")
    with pytest.raises(UserError, match="no such file") as info:
        images.load_image(path)
    assert path in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(UserError, match="folder") as info:
        images.load_image(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_text_file_with_png_suffix(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(UserError, match="not an image") as info:
        images.load_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("flag", [False, True])
def test_truncated_jpeg(tmp_path, monkeypatch, flag):
    full = tmp_path / "full.jpg"
    Image.fromarray(_gradient(64, 64)).save(full, quality=95)
    data = full.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    # Even when other code turned on Pillow's lenient global flag, truncation fails...
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", flag)
    with pytest.raises(UserError, match="truncated") as info:
        images.load_image(path)
    assert str(path) in str(info.value)
    # ...and the flag is left as it was found.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is flag


@pytest.mark.parametrize("size", [(15, 40), (40, 15), (8, 8)])
def test_too_small(tmp_path, size):
    width, height = size
    path = tmp_path / "tiny.png"
    Image.new("RGB", (width, height), (10, 20, 30)).save(path)
    with pytest.raises(UserError, match="too small") as info:
        images.load_image(path)
    message = str(info.value)
    assert str(path) in message
    assert "16 px" in message
    assert "halves the image four times" in message
    assert f"{width}x{height}" in message


def test_smallest_allowed(tmp_path):
    path = tmp_path / "ok.png"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(path)
    image = _rgb(images.load_image(path))
    assert image.shape == (16, 16, 3)


# --------------------------------------------------------------------------- conversions


def test_rgb_png_exact(tmp_path):
    pixels = _gradient()
    path = tmp_path / "rgb.png"
    Image.fromarray(pixels).save(path)
    image = _rgb(images.load_image(path))
    assert image.shape == (24, 32, 3)
    np.testing.assert_allclose(image, pixels / 255.0, atol=EPS)


def test_greyscale_l(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (20, 18), 128).save(path)
    image = _rgb(images.load_image(path))
    assert image.shape == (18, 20, 3)
    np.testing.assert_allclose(image, 128 / 255.0, atol=EPS)


def test_greyscale_la_over_white(tmp_path):
    pixels = np.zeros((16, 20, 2), np.uint8)
    pixels[:, :10, 1] = 255  # left half opaque black, right half fully transparent
    path = tmp_path / "la.png"
    Image.frombytes("LA", (20, 16), pixels.tobytes()).save(path)
    image = _rgb(images.load_image(path))
    np.testing.assert_allclose(image[:, :10], 0.0, atol=EPS)
    np.testing.assert_allclose(image[:, 10:], 1.0, atol=EPS)


def test_bilevel(tmp_path):
    pixels = np.zeros((16, 16), bool)
    pixels[:, 8:] = True
    path = tmp_path / "bits.png"
    Image.fromarray(pixels).convert("1").save(path)
    with Image.open(path) as check:
        assert check.mode == "1"
    image = _rgb(images.load_image(path))
    np.testing.assert_allclose(image[:, :8], 0.0, atol=EPS)
    np.testing.assert_allclose(image[:, 8:], 1.0, atol=EPS)


def test_palette_with_transparency(tmp_path):
    indices = np.zeros((16, 20), np.uint8)
    indices[:, 10:] = 1
    palette_image = Image.frombytes("P", (20, 16), indices.tobytes())
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=1)  # index 1 (blue) is fully transparent
    with Image.open(path) as check:
        assert check.mode == "P"
        assert "transparency" in check.info
    image = _rgb(images.load_image(path))
    _assert_colour(image[:, :10], [1.0, 0.0, 0.0], atol=EPS)
    np.testing.assert_allclose(image[:, 10:], 1.0, atol=EPS)


def test_palette_without_transparency(tmp_path):
    path = tmp_path / "palette.gif"
    Image.new("P", (16, 16), 0).save(path)
    image = _rgb(images.load_image(path))
    assert image.shape == (16, 16, 3)


def test_rgba_half_transparent_over_white(tmp_path):
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (16, 16), (255, 0, 0, 128)).save(path)
    image = _rgb(images.load_image(path))
    alpha = 128 / 255.0
    _assert_colour(image, [1.0, 1.0 - alpha, 1.0 - alpha], atol=EPS)


def test_cmyk(tmp_path):
    path = tmp_path / "cmyk.tif"
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(path)  # pure cyan
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    image = _rgb(images.load_image(path))
    _assert_colour(image, [0.0, 1.0, 1.0], atol=EPS)


def test_sixteen_bit_png_uses_full_range(tmp_path):
    pixels = np.zeros((16, 16), np.uint16)
    pixels[:8] = 65535
    pixels[8:] = 32768
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    image = _rgb(images.load_image(path))
    np.testing.assert_allclose(image[:8], 1.0, atol=EPS)
    np.testing.assert_allclose(image[8:], 32768 / 65535.0, atol=EPS)
    assert abs(float(image[8, 0, 0]) - 0.5) < 1e-4


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_sixteen_bit_modes_in_memory(mode):
    base = Image.fromarray(np.array([[0, 32768, 65535]], np.int32))  # mode "I"
    image = base if mode == "I" else base.convert(mode)
    assert image.mode == mode
    rgb = images._to_rgb01(image)
    assert rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0, :, 0], [0.0, 32768 / 65535.0, 1.0], atol=EPS)
    np.testing.assert_allclose(rgb[..., 0], rgb[..., 2], atol=0.0)


def test_float_tiff(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((16, 16), 0.25, np.float32)).save(path)
    with Image.open(path) as check:
        assert check.mode == "F"
    image = _rgb(images.load_image(path))
    np.testing.assert_allclose(image, 0.25, atol=EPS)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0]),  # already [0, 1]
        ([0.0, 127.5, 255.0], [0.0, 0.5, 1.0]),  # 8-bit range
        ([0.0, 32767.5, 65535.0], [0.0, 0.5, 1.0]),  # 16-bit range
        ([-1.0, 0.5, 1.0], [0.0, 0.5, 1.0]),  # negatives clipped
    ],
)
def test_float_mode_scaling(values, expected):
    rgb = images._to_rgb01(Image.fromarray(np.array([values], np.float32)))
    np.testing.assert_allclose(rgb[0, :, 1], expected, atol=EPS)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("YCbCr", (255, 128, 128), (1.0, 1.0, 1.0)),
        ("YCbCr", (0, 128, 128), (0.0, 0.0, 0.0)),
        ("HSV", (0, 255, 255), (1.0, 0.0, 0.0)),
        ("HSV", (0, 0, 255), (1.0, 1.0, 1.0)),
        ("LAB", (255, 128, 128), (1.0, 1.0, 1.0)),
        ("LAB", (0, 128, 128), (0.0, 0.0, 0.0)),
    ],
)
def test_other_modes_via_pillow(mode, value, expected):
    rgb = images._to_rgb01(Image.new(mode, (4, 4), value))
    assert rgb.dtype == np.float32
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_allclose(rgb[0, 0], expected, atol=3 * LEVEL)


def test_lab_tiff(tmp_path):
    path = tmp_path / "lab.tif"
    Image.new("LAB", (16, 16), (255, 128, 128)).save(path)
    image = _rgb(images.load_image(path))
    np.testing.assert_allclose(image, 1.0, atol=3 * LEVEL)


def test_exif_orientation_applied(tmp_path):
    # Stored 40 wide x 20 tall, red block in the stored top-left corner, rest blue.
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[:8, :8] = (255, 0, 0)
    stored = Image.fromarray(pixels)
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, quality=95, exif=exif)
    image = _rgb(images.load_image(path))
    assert image.shape == (40, 20, 3)  # now portrait
    # Turning clockwise carries the top-left corner to the top-right.
    top_right = image[1:7, -7:-1]
    top_left = image[1:7, 1:7]
    np.testing.assert_allclose(top_right.mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.1)
    np.testing.assert_allclose(top_left.mean(axis=(0, 1)), [0.0, 0.0, 1.0], atol=0.1)


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("height", "width", "side", "expected"),
    [
        (300, 400, 512, (384, 512)),
        (400, 300, 512, (512, 384)),
        (100, 100, 64, (64, 64)),
        (7, 3, 100, (100, 43)),  # 42.857 -> 43
        (64, 33, 32, (32, 17)),  # 16.5 -> 17: halves round up
        (1000, 1499, 100, (67, 100)),  # 66.71 -> 67
        (16, 16, 16, (16, 16)),
    ],
)
def test_output_shape(height, width, side, expected):
    assert image_ops.output_shape(height, width, side) == expected


def test_output_shape_too_small():
    with pytest.raises(ValueError, match="too small") as info:
        image_ops.output_shape(100, 1000, 100)
    message = str(info.value)
    assert "100" in message
    assert "10x100" in message
    assert "16 px" in message
    assert "halves the image four times" in message


def test_output_shape_side_below_minimum():
    with pytest.raises(ValueError, match="15"):
        image_ops.output_shape(100, 100, 15)


@pytest.mark.parametrize("shape", [(12, 20), (48, 64), (30, 17)])
def test_resize_shape_and_range(shape):
    source = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    result = image_ops.resize(source, shape)
    assert result.shape == (*shape, 3)
    assert result.dtype == np.float32
    assert float(result.min()) >= 0.0
    assert float(result.max()) <= 1.0


def test_resize_keeps_constants_and_float_precision():
    source = np.full((20, 30, 3), 0.3017, np.float32)
    result = image_ops.resize(source, (41, 13))
    # No 8-bit detour: 0.3017 is not a multiple of 1/255 and survives far better than that.
    np.testing.assert_allclose(result, 0.3017, atol=1e-5)


def test_resize_same_shape_copies():
    source = np.random.default_rng(1).random((16, 16, 3), dtype=np.float32)
    result = image_ops.resize(source, (16, 16))
    np.testing.assert_array_equal(result, source)
    assert result is not source


def test_resize_preserves_mean_of_smooth_image():
    y, x = np.mgrid[0:64, 0:64] / 63.0
    source = np.stack([x, y, 0.5 * (x + y)], -1).astype(np.float32)
    result = image_ops.resize(source, (16, 16))
    np.testing.assert_allclose(result.mean(axis=(0, 1)), source.mean(axis=(0, 1)), atol=0.01)
    assert result[0, 0, 0] < 0.1
    assert result[0, -1, 0] > 0.9


# --------------------------------------------------------------------------- writing


def test_save_png_round_trip_with_metadata(tmp_path):
    rng = np.random.default_rng(2)
    source = rng.random((20, 24, 3), dtype=np.float32)
    metadata = {
        "stylejax": json.dumps({"content": "Tübingen Neckarfront.jpg", "style": "星月夜"}),
        "Comment": "plain ASCII",
        "Titel": "Straße café ñ",
    }
    path = tmp_path / "out.png"
    images.save_png(path, source, metadata)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    loaded = images.load_image(path)
    np.testing.assert_allclose(loaded, source, atol=0.5 * LEVEL + EPS)
    read = images.read_png_metadata(path)
    assert read == metadata
    assert json.loads(read["stylejax"])["style"] == "星月夜"


def test_save_png_clips_and_rounds(tmp_path):
    source = np.zeros((16, 16, 3), np.float32)
    source[:, :4] = -0.5
    source[:, 4:8] = 1.7
    source[:, 8:12] = 0.5 / 255.0 + 1e-4  # rounds up to level 1
    source[:, 12:] = np.nan
    path = tmp_path / "clip.png"
    images.save_png(path, source)
    with Image.open(path) as image:
        assert image.mode == "RGB"
        pixels = np.asarray(image)
    assert (pixels[:, :4] == 0).all()
    assert (pixels[:, 4:8] == 255).all()
    assert (pixels[:, 8:12] == 1).all()
    assert (pixels[:, 12:] == 0).all()
    assert images.read_png_metadata(path) == {}


def test_save_png_failure_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"previous result")
    written = []

    def failing_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:  # half a file, then the disk fills up
            f.write(b"\x89PNG half")
        written.append(fp)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        images.save_png(path, np.zeros((16, 16, 3), np.float32), {"k": "v"})
    assert len(written) == 1
    assert os.path.basename(written[0]).startswith(".out.png.tmp-")
    assert path.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"k" * 80: "v"}, ValueError),
        ({"": "v"}, ValueError),
        ({"名前": "v"}, ValueError),
        ({"k": 5}, TypeError),
    ],
)
def test_save_png_rejects_bad_metadata_before_writing(tmp_path, metadata, error):
    path = tmp_path / "out.png"
    path.write_bytes(b"previous result")
    with pytest.raises(error):
        images.save_png(path, np.zeros((16, 16, 3), np.float32), metadata)
    assert path.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path):
    bomb = image_files.png_declaring(tmp_path / "bomb.png", 13000, 13000)
    assert os.path.getsize(bomb) < 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's own warning must not leak out
        with pytest.raises(UserError, match="too large to read safely") as info:
            images.load_image(bomb)
    message = str(info.value)
    assert "13000x13000" in message and "169 MP" in message and "89 MP" in message, message


def test_an_image_just_under_the_pixel_limit_is_not_refused_for_its_size(tmp_path):
    side = int(images.MAX_INPUT_PIXELS**0.5)
    declared = image_files.png_declaring(tmp_path / "big.png", side, side)
    with pytest.raises(UserError) as info:  # its data is 16x16 px, so decoding fails
        images.load_image(declared)
    assert "too large" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="FIFO"):  # would block forever in open()
        images.load_image(fifo)


def test_save_png_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        images.save_png(tmp_path / "x.png", np.zeros((16, 16), np.float32))
    assert os.listdir(tmp_path) == []


def test_read_png_metadata_errors(tmp_path):
    missing = str(tmp_path / "missing.png")
    with pytest.raises(UserError, match="no such file") as info:
        images.read_png_metadata(missing)
    assert missing in str(info.value)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (16, 16)).save(jpeg)
    with pytest.raises(UserError, match="not a PNG") as info:
        images.read_png_metadata(jpeg)
    assert str(jpeg) in str(info.value)


# --------------------------------------------------------------------------- synthesis


def _neighbour_correlation(image):
    horizontal = np.corrcoef(image[:, :-1].ravel(), image[:, 1:].ravel())[0, 1]
    vertical = np.corrcoef(image[:-1].ravel(), image[1:].ravel())[0, 1]
    return min(horizontal, vertical)


def test_white_noise():
    a = image_ops.white_noise(0, (30, 40))
    b = image_ops.white_noise(0, (30, 40))
    c = image_ops.white_noise(1, (30, 40))
    assert a.shape == (30, 40, 3)
    assert a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert float(a.min()) >= 0.0
    assert float(a.max()) < 1.0
    assert abs(float(a.mean()) - 0.5) < 0.03
    assert abs(_neighbour_correlation(a)) < 0.1


# --------------------------------------------------------------------------- example images


def test_example_images_dir_is_the_packaged_folder_without_the_override(monkeypatch):
    monkeypatch.delenv("STYLEJAX_IMAGES", raising=False)
    folder = images.example_images_dir()
    assert folder == images.packaged_examples_dir()
    assert os.path.normpath(folder).endswith(os.path.join("stylejax", "examples"))
    monkeypatch.setenv("STYLEJAX_IMAGES", "")  # empty counts as unset
    assert images.example_images_dir() == folder


def test_example_images_dir_is_the_override_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEJAX_IMAGES", str(tmp_path))
    assert images.example_images_dir() == str(tmp_path)
    monkeypatch.setenv("STYLEJAX_IMAGES", "/no/such/folder")  # returned as given; callers check
    assert images.example_images_dir() == "/no/such/folder"


def test_example_image_prefers_the_override_and_falls_back_to_the_shipped_copy(tmp_path, monkeypatch):
    import re

    name = "tuebingen_neckarfront.jpg"
    Image.fromarray(_gradient()).save(tmp_path / name)
    monkeypatch.setenv("STYLEJAX_IMAGES", str(tmp_path))
    assert images.example_image(name) == str(tmp_path / name)
    shipped = os.path.join(images.packaged_examples_dir(), "hokusai_great_wave.jpg")
    assert images.example_image("hokusai_great_wave.jpg") == shipped  # not in the override
    with pytest.raises(UserError, match=r"no_such_picture\.jpg.*" + re.escape(str(tmp_path))):
        images.example_image("no_such_picture.jpg")
    monkeypatch.delenv("STYLEJAX_IMAGES")
    assert images.example_image(name) == os.path.join(images.packaged_examples_dir(), name)


def test_the_shipped_examples_are_512px_credited_and_listed_with_their_md5():
    import hashlib

    folder = images.packaged_examples_dir()
    shipped = sorted(f for f in os.listdir(folder) if f.endswith(".jpg"))
    assert shipped == sorted(n for n in images.EXAMPLE_CREDITS if n.endswith(".jpg"))
    mask = "tuebingen_neckarfront_sky_mask.png"
    assert "Andreas Praefcke" in images.EXAMPLE_CREDITS[mask]
    assert "Andreas Praefcke" in images.EXAMPLE_CREDITS["tuebingen_neckarfront.jpg"]
    with open(os.path.join(folder, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "Andreas Praefcke" in readme and "CC BY 3.0" in readme
    for name in shipped:
        path = os.path.join(folder, name)
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert max(image.size) == 512, (name, image.size)
        with open(path, "rb") as f:
            assert f"{hashlib.md5(f.read()).hexdigest()}  {name}" in readme, name
        assert f"| {name} |" in readme
        _rgb(images.load_image(path))
    with open(os.path.join(folder, mask), "rb") as f:
        assert f"{hashlib.md5(f.read()).hexdigest()}  {mask}" in readme
