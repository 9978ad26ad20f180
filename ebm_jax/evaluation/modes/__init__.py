"""The evaluation modes beyond ``samples``, one module each, registered in
``ebm_jax.evaluation.evaluation.MODES``.

Importing ``ebm_jax.evaluation.evaluation`` first, here, lets a notebook import any mode module directly
(``from ebm_jax.evaluation.modes.interpolation import interpolation_chains``): the registry then
imports the mode modules once ``evaluation`` is defined.
"""
from ebm_jax.evaluation import evaluation  # noqa: F401
