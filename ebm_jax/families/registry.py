"""``model.family`` -> its ``Family``: the one place that knows the family names.

To add a family, write a module with a ``base.Family`` subclass and add one line here.
"""
from __future__ import annotations

from typing import Sequence

from ebm_jax.families import base, ebm, generator, latent_ebm

FAMILIES: dict[str, type[base.Family]] = {
    "ebm": ebm.EBM,
    "latent_ebm": latent_ebm.LatentEBM,
    "generator": generator.Generator,
}


def family_class(config) -> type[base.Family]:
    name = config.model.get("family", "ebm")
    if name not in FAMILIES:
        raise ValueError(f"unknown model.family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def build_family(config, data_shape: Sequence[int]) -> base.Family:
    """The family of ``config.model.family`` for examples of ``data_shape``."""
    return family_class(config)(config, data_shape)
