"""The evaluation modes beyond ``samples``, one module each, registered in
``ebm_jax.evaluation.MODES``.

Importing ``ebm_jax.evaluation`` first, here, lets a notebook import any mode module directly
(``from ebm_jax.eval_modes.interpolation import interpolation_chains``): the registry then
imports the mode modules once ``evaluation`` is defined.
"""
from ebm_jax import evaluation  # noqa: F401
