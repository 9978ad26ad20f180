"""The evaluation modes, one module each, registered here and nowhere else.

Each module defines its ``common.Mode`` record(s); ``MODES`` maps ``--mode`` names to them.
``--mode=all`` is not a mode of its own: the runner (``evaluation/runner.py``) runs every
registered mode that applies.
"""
from ebm_jax.evaluation.modes import (ais, bpd, density, diagnostics, inception_metrics,
                                      interpolation, probe, reconstruction, samples,
                                      transition)

MODES = {m.name: m for m in (
    samples.MODE, transition.MODE, interpolation.MODE, reconstruction.MODE, diagnostics.MODE,
    probe.MODE, density.MODE, inception_metrics.FID, inception_metrics.FID_STATS, bpd.MODE,
    ais.MODE,
)}
