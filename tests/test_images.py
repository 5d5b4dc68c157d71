"""Reading every image mode, rejecting what cannot be used, resizing, writing atomically."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from stylejax._src import atomic, images
from stylejax._src.errors import UserError

EIGHT_BIT = 0.5 / 255 + 1e-6  # one rounding step of an 8-bit file


def _save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return str(path)


def test_rgb_round_trip(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    loaded = images.load_image(_save(tmp_path, "a.png", Image.fromarray(pixels)))
    assert loaded.shape == (20, 30, 3) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, pixels / 255.0, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_greyscale_becomes_three_equal_channels(tmp_path, mode):
    grey = Image.fromarray(np.tile(np.arange(0, 240, 10, dtype=np.uint8), (20, 1))).convert(mode)
    loaded = images.load_image(_save(tmp_path, "g.png", grey))
    assert loaded.shape == (20, 24, 3)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])


def test_palette_with_transparency_goes_over_white(tmp_path):
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 10, 20))
    path = _save(tmp_path, "p.png", palette, transparency=1)
    loaded = images.load_image(path)
    np.testing.assert_allclose(loaded[0, 0], [1.0, 1.0, 1.0], atol=EIGHT_BIT)  # transparent: white
    np.testing.assert_allclose(loaded[0, 15], [1.0, 0.0, 0.0], atol=EIGHT_BIT)


def test_half_transparent_rgba_and_la_are_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 128))
    np.testing.assert_allclose(images.load_image(_save(tmp_path, "a.png", rgba))[3, 3], [127 / 255] * 3, atol=2e-3)
    la = Image.new("LA", (16, 16), (0, 0))
    np.testing.assert_allclose(images.load_image(_save(tmp_path, "la.png", la))[3, 3], [1.0] * 3, atol=1e-6)


def test_cmyk_is_converted(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    loaded = images.load_image(_save(tmp_path, "c.jpg", cmyk, quality=100))
    np.testing.assert_allclose(loaded[8, 8], [1.0, 0.0, 0.0], atol=0.02)


def test_sixteen_bit_greyscale_keeps_its_range(tmp_path):
    values = np.full((16, 16), 65535, np.uint16)
    values[:, 8:] = 32768
    image = Image.fromarray(values)  # uint16 -> mode I;16
    loaded = images.load_image(_save(tmp_path, "d.png", image))
    np.testing.assert_allclose(loaded[0, 0], [1.0] * 3, atol=1e-6)
    np.testing.assert_allclose(loaded[0, 12], [32768 / 65535] * 3, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:4, :4] = 255  # a white mark in the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    path = _save(tmp_path, "r.jpg", Image.fromarray(pixels), exif=exif, quality=95)
    loaded = images.load_image(path)
    assert loaded.shape == (40, 20, 3)
    assert loaded[:4, -4:].mean() > 0.9  # the mark is now top-right
    assert loaded[-4:, :4].mean() < 0.1


def test_missing_folder_text_truncated_and_tiny_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        images.load_image(tmp_path / "nothing.png")
    with pytest.raises(UserError, match="folder"):
        images.load_image(tmp_path)
    text = tmp_path / "t.png"
    text.write_text("hello")
    with pytest.raises(UserError, match="not an image"):
        images.load_image(text)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(buffer.getvalue()[:800])
    with pytest.raises(UserError, match="truncated"):
        images.load_image(cut)
    tiny = _save(tmp_path, "tiny.png", Image.new("RGB", (40, 15)))
    with pytest.raises(UserError, match=r"40x15 px.*at least 16 px"):
        images.load_image(tiny)


def test_output_shape_keeps_the_aspect_ratio():
    assert images.output_shape(768, 1024, 512) == (384, 512)
    assert images.output_shape(1528, 1200, 512) == (512, 402)  # The Scream: 402.09 -> 402
    assert images.output_shape(883, 1280, 64) == (44, 64)  # 44.15
    with pytest.raises(UserError, match="too small"):
        images.output_shape(100, 1000, 64)


def test_resize_shape_range_and_mean():
    image = np.random.default_rng(2).uniform(size=(30, 40, 3)).astype(np.float32)
    small = images.resize(image, (15, 20))
    assert small.shape == (15, 20, 3) and small.dtype == np.float32
    assert small.min() >= 0.0 and small.max() <= 1.0
    np.testing.assert_allclose(small.mean(), image.mean(), atol=0.01)
    flat = np.full((30, 40, 3), 0.3, np.float32)
    np.testing.assert_allclose(images.resize(flat, (17, 23)), 0.3, atol=1e-5)


def test_check_output_path(tmp_path):
    images.check_output_path(tmp_path / "fine.png")
    assert list(tmp_path.iterdir()) == []  # the write probe leaves nothing
    with pytest.raises(UserError, match="does not exist"):
        images.check_output_path(tmp_path / "no" / "x.png")
    with pytest.raises(UserError, match="is a folder"):
        images.check_output_path(tmp_path)
    with pytest.raises(UserError, match="cannot create files"):
        images.check_output_path("/proc/x.png")  # root cannot create files in /proc
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="not a folder"):
        images.check_output_path(tmp_path / "file" / "x.png")


def test_png_metadata_round_trip(tmp_path):
    path = tmp_path / "m.png"
    metadata = {"stylejax:config": json.dumps({"content": "Tübingen.jpg"}, ensure_ascii=False), "k": "v"}
    images.save_png(path, np.full((16, 16, 3), 2.0, np.float32), metadata)  # clipped to 1
    assert images.read_png_metadata(path) == metadata
    with Image.open(path) as image:
        assert np.asarray(image).min() == 255


def test_white_noise_is_seeded():
    a, b, c = images.white_noise(1, (8, 9)), images.white_noise(1, (8, 9)), images.white_noise(2, (8, 9))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (8, 9, 3) and a.min() >= 0.0 and a.max() < 1.0


def test_atomic_path_leaves_nothing_on_failure_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as temporary:
        assert temporary.endswith(".json") and os.path.dirname(temporary) == str(tmp_path)
        with open(temporary, "w") as handle:
            handle.write("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    atomic.atomic_write_json(target, {"loss": float("nan"), "ok": [1.0, float("inf")]})
    assert json.loads(target.read_text()) == {"loss": None, "ok": [1.0, None]}
