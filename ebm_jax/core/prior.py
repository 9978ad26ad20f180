"""The initial distribution p_0 of the short-run chains, as one value.

The sampler draws x_0 ~ p_0, the flow view needs log p_0(z), and the inversion of the flow keeps
z in p_0's support. ``Prior`` does all three for the two kinds the configs name:

    Prior.from_config(config.sampling)    # sampling.init, init_low, init_high, init_std
    x0 = prior.sample(key, (64, 8, 8, 1))
    log_p0_B = prior.log_prob(x0)
    z = prior.project(z)                   # clip into the uniform box; identity for a Gaussian
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array
KINDS = ("uniform", "gaussian")


@dataclasses.dataclass(frozen=True)
class Prior:
    """``uniform`` on the box [low, high]^D, or ``gaussian`` N(0, std^2 I)."""
    kind: str = "uniform"
    low: float = -1.0
    high: float = 1.0
    std: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown initial distribution {self.kind!r}; choose 'uniform' or "
                             "'gaussian'")
        if self.kind == "uniform" and not self.low < self.high:
            raise ValueError(f"a uniform prior needs low < high, got [{self.low}, {self.high}]")

    @classmethod
    def from_config(cls, sampling_config) -> Prior:
        """The prior of a config's ``sampling`` block (``init``, ``init_low``, ``init_high``,
        ``init_std``)."""
        c = sampling_config
        return cls(c.get("init", "uniform"), float(c.get("init_low", -1.0)),
                   float(c.get("init_high", 1.0)), float(c.get("init_std", 1.0)))

    @classmethod
    def uniform(cls, low: float = -1.0, high: float = 1.0) -> Prior:
        return cls("uniform", float(low), float(high))

    @classmethod
    def gaussian(cls, std: float = 1.0) -> Prior:
        return cls("gaussian", std=float(std))

    def sample(self, key: Array, shape: Sequence[int], dtype=jnp.float32) -> Array:
        """x_0 ~ p_0, of ``shape`` (batch first)."""
        if self.kind == "uniform":
            return jax.random.uniform(key, tuple(shape), dtype, self.low, self.high)
        return self.std * jax.random.normal(key, tuple(shape), dtype)

    def log_prob(self, x_B: Array) -> Array:
        """log p_0(x) per example; -inf outside the uniform box."""
        axes = tuple(range(1, x_B.ndim))
        dim = x_B[0].size
        if self.kind == "uniform":
            inside = jnp.all((x_B >= self.low) & (x_B <= self.high), axis=axes)
            return jnp.where(inside, -dim * jnp.log(self.high - self.low), -jnp.inf)
        return (-0.5 * jnp.sum(jnp.square(x_B / self.std), axis=axes)
                - dim * (jnp.log(self.std) + 0.5 * jnp.log(2 * jnp.pi)))

    def project(self, z: Array) -> Array:
        """The nearest point of the support: the box clip (the exact Euclidean projection) for
        a uniform prior, the identity for a Gaussian one."""
        return jnp.clip(z, self.low, self.high) if self.kind == "uniform" else z

    def boundary_count(self, z_B: Array) -> Array:
        """Per example, the coordinates of z on the box's boundary (0 for a Gaussian)."""
        if self.kind != "uniform":
            return jnp.zeros(z_B.shape[:1], jnp.int32)
        return jnp.sum((z_B <= self.low) | (z_B >= self.high), axis=tuple(range(1, z_B.ndim)))

    def describe(self) -> dict:
        """The protocol entry of an evaluation: what p_0 was."""
        return {"init": self.kind, "init_low": self.low, "init_high": self.high,
                "init_std": self.std}

    @property
    def scale(self) -> float:
        """The largest |coordinate| of a typical draw: the box's half-width, or 3 std."""
        return max(abs(self.low), abs(self.high)) if self.kind == "uniform" else 3 * self.std
