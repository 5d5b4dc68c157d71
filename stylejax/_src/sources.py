"""Where pretrained VGG19 weights come from: URL, checksum, file layout, input convention.

The published files of each source (see docs/weights.md). A checksum given as a prefix (the
torch hub convention: the first 8 hex digits of the SHA-256 are in the file name) is
checked as a prefix. Sources without a live URL can still be converted from a file the
user brings (``stylejax weights convert FILE``).
"""

from __future__ import annotations

import dataclasses

from stylejax._src.convention import CAFFE, TORCHVISION, InputConvention
from stylejax._src.errors import UserError


@dataclasses.dataclass(frozen=True)
class WeightSource:
    name: str
    description: str
    filename: str
    layout: str  # keras-h5 | torch-features | torch-named | flaxmodels-h5 | matconvnet
    convention: InputConvention | None  # None: read from the file (MatConvNet)
    url: str | None = None
    md5: str | None = None
    sha256: str | None = None  # full digest, or a prefix of one
    size_mb: int | None = None


SOURCES: dict[str, WeightSource] = {
    source.name: source
    for source in (
        WeightSource(
            name="keras",
            description="Keras applications VGG19 without top, ported from the Oxford Caffe model",
            filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
            layout="keras-h5",
            convention=CAFFE,
            url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
            md5="253f8cb515780f3b799900260a226db6",
            size_mb=80,
        ),
        WeightSource(
            name="torchvision",
            description="torchvision's own VGG19 (trained in PyTorch; RGB, mean/std input)",
            filename="vgg19-dcbb9e9d.pth",
            layout="torch-features",
            convention=TORCHVISION,
            url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            sha256="dcbb9e9d",
            size_mb=548,
        ),
        WeightSource(
            name="jcjohnson",
            description="the Oxford Caffe model in torchvision key layout (neural-style-pt)",
            filename="vgg19-d01eb7cb.pth",
            layout="torch-features",
            convention=CAFFE,
            url="https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth",
            sha256="d01eb7cb",
            size_mb=548,
        ),
        WeightSource(
            name="pystiche",
            description="pystiche's port of the Oxford Caffe model, torchvision key layout",
            filename="vgg19-74e45263.pth",
            layout="torch-features",
            convention=CAFFE,
            url="https://download.pystiche.org/models/vgg19-74e45263.pth",
            sha256="74e45263",
            size_mb=548,
        ),
        WeightSource(
            name="gatys",
            description="Gatys' vgg_conv.pth (PytorchNeuralStyleTransfer; original link dead)",
            filename="vgg_conv.pth",
            layout="torch-named",
            convention=CAFFE,
        ),
        WeightSource(
            name="flaxmodels",
            description="flaxmodels vgg19_weights.h5 (converted from torchvision)",
            filename="vgg19_weights.h5",
            layout="flaxmodels-h5",
            convention=TORCHVISION,
        ),
        WeightSource(
            name="matconvnet",
            description="MatConvNet imagenet-vgg-verydeep-19.mat (RGB, 0..255, mean from the file)",
            filename="imagenet-vgg-verydeep-19.mat",
            layout="matconvnet",
            convention=None,
            sha256="abdb57167f82a2a1fbab1e1c16ad9373411883f262a1a37ee5db2e6fb0044695",
        ),
    )
}

DEFAULT_FETCH = "keras"


def fetchable() -> list[str]:
    return [name for name, source in SOURCES.items() if source.url]


def get_source(name: str) -> WeightSource:
    if name not in SOURCES:
        raise UserError(f"unknown weights source {name!r}: expected one of {', '.join(SOURCES)}")
    return SOURCES[name]


def identify_by_filename(filename: str) -> WeightSource | None:
    """The source a file name belongs to (torch hub names carry their checksum prefix)."""
    base = filename.rsplit("/", 1)[-1]
    for source in SOURCES.values():
        if base == source.filename:
            return source
    for source in SOURCES.values():
        if source.layout == "torch-features" and source.sha256 and source.sha256 in base:
            return source
    return None
