"""Deprecated name of ``ebm_jax.cli.commands``, kept for one release."""
from ebm_jax.runtime import renamed

renamed.alias(__name__, "ebm_jax.cli.commands")
