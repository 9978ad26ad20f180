"""Evaluation modes beyond ``samples``, one module each; ``evaluation.MODES`` registers them."""
