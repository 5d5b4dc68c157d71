"""The float32 precision of the objective's matrix products and convolutions.

JAX's ``precision`` of ``dot_general`` and ``conv_general_dilated``, set for everything
the solver traces through :func:`context` (``jax.default_matmul_precision``):

- ``highest``: full float32 products on every backend.
- ``high``: on TPU, three bfloat16 passes (bf16_3x, close to float32); on NVIDIA GPUs,
  TF32 where the hardware has it (Ampere and later); on CPU, float32.
- ``default``: the backend's fastest: one bfloat16 pass on TPU, TF32 on NVIDIA GPUs
  (Ampere and later; XLA's default there), float32 on CPU.

XLA:CPU computes float32 products in float32 whatever the setting, so on CPU the three
give the same result. The default stays ``highest`` until a device measurement shows a
cheaper one keeps the objective and its gradient within 1e-3 (relative) of it
(``scripts/device_check.py`` measures exactly that; docs/device-check.md).
"""

from __future__ import annotations

import jax

PRECISIONS = ("highest", "high", "default")
DEFAULT_PRECISION = "highest"


def check(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def context(precision: str):
    """The context in which traced products take ``precision`` (see the module doc).

    It must surround the tracing: JAX records the precision in each product when it is
    traced, and its transposes (the gradient) inherit it.
    """
    return jax.default_matmul_precision(check(precision))
