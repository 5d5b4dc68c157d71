"""Regenerates stylejax/examples/: the paper's images downscaled to ship with the package.

    python scripts/make_examples.py ORIGINALS_DIR
    python scripts/make_examples.py --mask-only     # only the Neckarfront's sky mask

Reads the seven reference JPEGs of Gatys, Ecker & Bethge (CVPR 2016) from the folder
given (the originals; their README gives each file's credit and licence), resizes each
with Pillow's LANCZOS filter to 512 px on its longer side (the other side scaled by the
same factor, rounded to the nearest pixel, halves up), and saves it as baseline JPEG,
quality 90, under the same file name in stylejax/examples/ (``--out`` to write
elsewhere). The EXIF orientation is applied first; other metadata is dropped except an
embedded ICC colour profile. Then it rewrites stylejax/examples/README.md: the table of
files (original and shipped size, what, credit, licence, source) and the md5 of each
shipped file and of each original. With the same Pillow (and libjpeg) the output is byte-identical; the md5
sums in README.md are those of the files written. Needs only Pillow; takes about a second.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys

from PIL import Image, ImageOps

LONG_SIDE = 512
QUALITY = 90
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stylejax", "examples")

# file name -> (what, credit, licence, where it is from); in the order of the paper.
IMAGES = {
    "tuebingen_neckarfront.jpg": (
        "Neckarfront, Tübingen (2003). The paper's content image (Fig. 1-6).",
        "Andreas Praefcke",
        "CC BY 3.0 (credit \"Andreas Praefcke\" wherever it or a result made from it is shown)",
        "Wikimedia Commons, `Tuebingen_Neckarfront.jpg` (the original is byte-identical to it)",
    ),
    "vangogh_starry_night.jpg": (
        "Vincent van Gogh, The Starry Night (1889). Fig. 1 style, Fig. 3C.",
        "Vincent van Gogh",
        "public domain",
        "the copy behind the authors' published loss curves",
    ),
    "turner_shipwreck_minotaur.jpg": (
        "J. M. W. Turner, The Shipwreck of the Minotaur (c. 1810). Fig. 3B.",
        "J. M. W. Turner",
        "public domain",
        "the paper's Fig. 3B painting",
    ),
    "munch_the_scream.jpg": (
        "Edvard Munch, The Scream (1893). Fig. 3D.",
        "Edvard Munch",
        "public domain",
        "the paper's Fig. 3D painting",
    ),
    "kandinsky_composition_vii.jpg": (
        "Wassily Kandinsky, Composition VII (1913). Fig. 3F and Fig. 4.",
        "Wassily Kandinsky",
        "public domain",
        "the paper's Fig. 3F / Fig. 4 painting; the scan is cropped to 4:3",
    ),
    "vangogh_wheat_field_with_cypresses.jpg": (
        "Vincent van Gogh, A Wheatfield with Cypresses (1889). Extra style (Fig. 5's default).",
        "Vincent van Gogh",
        "public domain",
        "an extra public-domain painting (Fig. 5's Feininger was not available)",
    ),
    "hokusai_great_wave.jpg": (
        "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831). Extra style.",
        "Katsushika Hokusai",
        "public domain",
        "an extra public-domain painting",
    ),
}

HEADER = """\
# Example images

Downscaled copies of the images of Gatys, Ecker & Bethge, "Image Style Transfer Using
Convolutional Neural Networks" (CVPR 2016, Fig. 1, 3, 4, 6), plus two extra public-domain
paintings, shipped with stylejax so that `stylejax demo`, the figure scripts
(`scripts/fig*.py`) and their tests run from a fresh clone or a `pip install`. Each is
the original resized with Pillow's LANCZOS filter to {long_side} px on its longer side and
saved as JPEG quality {quality}; `scripts/make_examples.py ORIGINALS_DIR` regenerates them
(and this file). `$STYLEJAX_IMAGES` points stylejax at another folder (for example the
full-size originals) instead.

Credit each picture wherever it, or a result made from it, is shown. The Neckarfront
photograph is licensed CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/) and must
be credited "Andreas Praefcke"; these copies are downscaled from his photograph (no other
change). The paintings are in the public domain.

| file | original size | shipped size | what | credit | licence | source |
|---|---|---|---|---|---|---|
"""

FOOTER = """
`tuebingen_neckarfront_sky_mask.png` is a mask made from the shipped Neckarfront copy
(white: sky, black: town; by colour, see `sky_mask` in `scripts/make_examples.py`), for
spatial control (Gatys et al., CVPR 2017, Sec. 4). It is derived from Andreas Praefcke's
photograph (CC BY 3.0): credit him wherever it is shown.

Not here: Fig. 3E (Picasso, Femme nue assise) is still under copyright; Fig. 5's style
(Feininger, Jesuiten III) and Fig. 7's photographs were not available. The figure scripts
take any replacement image for those panels (`--replace KEY=PATH`, `--style`, `--content`).

md5 sums of the shipped files:

```
{md5}
```

and of the full-size originals they were made from:

```
{original_md5}
```
"""


def target_size(width: int, height: int, long_side: int = LONG_SIDE) -> tuple[int, int]:
    """(width, height) with the longer side ``long_side``; the other rounded, halves up."""
    scale = long_side / max(width, height)
    new_width = long_side if width >= height else math.floor(width * scale + 0.5)
    new_height = long_side if height > width else math.floor(height * scale + 0.5)
    return new_width, new_height


def downscale(source: str, target: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Writes the downscaled JPEG; returns the original and the new (width, height)."""
    with Image.open(source) as image:
        image.load()
        icc = image.info.get("icc_profile")
        oriented = ImageOps.exif_transpose(image).convert("RGB")
        original = oriented.size
        size = target_size(*original)
        small = oriented.resize(size, Image.Resampling.LANCZOS) if size != original else oriented
    options = {"quality": QUALITY, "optimize": True}
    if icc:
        options["icc_profile"] = icc
    small.save(target, format="JPEG", **options)
    return original, size


def md5(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def by_name(lines: list[str]) -> str:
    """md5sum lines (``SUM  NAME``) sorted by file name, one block."""
    return "\n".join(sorted(lines, key=lambda line: line.split()[1]))


MASK = "tuebingen_neckarfront_sky_mask.png"


def sky_mask(photo: str, target: str) -> float:
    """The Neckarfront's sky as a black-and-white PNG (white: sky), for spatial control.

    A pixel is sky-coloured when its blue exceeds 0.55 and its red by 0.12 and its green
    by 0.02 (RGB in [0, 1]); the sky is, per column, the sky-coloured run from the top
    edge down. Deterministic; returns the sky's share of the picture.
    """
    with Image.open(photo) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    width, height = rgb.size
    pixels = rgb.load()
    mask = Image.new("L", (width, height), 0)
    out = mask.load()
    sky = 0
    for x in range(width):
        for y in range(height):
            r, g, b = (v / 255 for v in pixels[x, y])
            if not (b > 0.55 and b > r + 0.12 and b > g + 0.02):
                break
            out[x, y] = 255
            sky += 1
    mask.save(target, format="PNG", optimize=True)
    return sky / (width * height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("originals", metavar="DIR", nargs="?", help="folder holding the full-size originals")
    parser.add_argument("--out", default=OUT, help=f"where to write them (default {OUT})")
    parser.add_argument("--mask-only", action="store_true",
                        help=f"only (re)make {MASK} from the shipped Neckarfront copy in --out")
    args = parser.parse_args(argv)
    if args.mask_only:
        share = sky_mask(os.path.join(args.out, "tuebingen_neckarfront.jpg"), os.path.join(args.out, MASK))
        print(f"{MASK}: sky {share:.1%} of the picture")
        return 0
    if args.originals is None:
        parser.error("give the folder of the originals (or --mask-only)")
    missing = [name for name in IMAGES if not os.path.isfile(os.path.join(args.originals, name))]
    if missing:
        print(f"make_examples: error: not in {args.originals}: {', '.join(missing)}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    rows, sums, original_sums, total = [], [], [], 0
    for name, (what, credit, licence, source) in IMAGES.items():
        target = os.path.join(args.out, name)
        (ow, oh), (w, h) = downscale(os.path.join(args.originals, name), target)
        total += os.path.getsize(target)
        rows.append(f"| {name} | {ow}x{oh} | {w}x{h} | {what} | {credit} | {licence} | {source} |")
        sums.append(f"{md5(target)}  {name}")
        original_sums.append(f"{md5(os.path.join(args.originals, name))}  {name}")
        print(f"{name}: {ow}x{oh} -> {w}x{h}, {os.path.getsize(target) / 1024:.0f} KiB")
    share = sky_mask(os.path.join(args.out, "tuebingen_neckarfront.jpg"), os.path.join(args.out, MASK))
    print(f"{MASK}: sky {share:.1%} of the picture")
    sums.append(f"{md5(os.path.join(args.out, MASK))}  {MASK}")
    readme = (HEADER.format(long_side=LONG_SIDE, quality=QUALITY) + "\n".join(rows) + "\n"
              + FOOTER.format(md5=by_name(sums), original_md5=by_name(original_sums)))
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme)
    print(f"{len(IMAGES)} files, {total / 1024:.0f} KiB in all, the mask, and README.md in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
