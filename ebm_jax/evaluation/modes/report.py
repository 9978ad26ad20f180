"""``--mode=all``: every mode that applies to the model, and one ``report.md`` of pictures and
numbers.

Image models get samples, diagnostics, transition, interpolation, reconstruction and, when the
Inception weights are present or the data are digits (``digit_features``), fid; vector (toy) models get samples, diagnostics and density.
A mode that cannot run (for instance fid without weights) is listed with its reason.
Each mode draws its own default number of samples (``evaluation.default_num_samples``); the
seed and the options are shared.
"""
from __future__ import annotations

import os

from ebm_jax.evaluation import digit_features, evaluation, inception

IMAGE_MODES = ("samples", "diagnostics", "transition", "interpolation", "reconstruction", "fid")
VECTOR_MODES = ("samples", "diagnostics", "density")


def applicable_modes(run) -> list[str]:
    modes = IMAGE_MODES if run.is_image else VECTOR_MODES
    return [m for m in modes if m in evaluation.MODES]


def skip_reason(mode: str, request: evaluation.Request, config=None) -> str | None:
    if mode == "fid" and not (config and digit_features.uses_digit_network(config, request)):
        path = request.option("inception_weights") or inception.default_weights_path()
        if not os.path.exists(path):
            return inception.missing_weights_message(path)
    return None


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_report(path: str, run, results: dict, skipped: dict, out_dir: str):
    lines = [f"# Evaluation at step {run.step}", "",
             f"Model: `{run.config.model.name}`, data `{run.config.data.dataset}`, trained with "
             f"K = {run.config.sampling.num_steps}. Every figure comes from fresh short-run "
             "chains from noise; each mode's JSON holds its exact protocol.", ""]
    for mode, result in results.items():
        lines += [f"## {mode}", "", "| statistic | value |", "| --- | --- |"]
        lines += [f"| {k} | {_format(v)} |" for k, v in result["stats"].items()]
        lines.append("")
        for name in sorted(os.listdir(out_dir)):
            if name.startswith(mode) and name.endswith(".png"):
                lines += [f"![{name}]({name})", ""]
    for mode, reason in skipped.items():
        lines += [f"## {mode} (not run)", "", "```", reason, "```", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def evaluate_all(run, config, out_dir: str, request: evaluation.Request) -> dict:
    results, skipped, flat = {}, {}, {}
    for mode in applicable_modes(run):
        reason = skip_reason(mode, request, config)
        if reason:
            skipped[mode] = reason
            continue
        sub = evaluation.Request(evaluation.default_num_samples(config, mode), request.seed,
                                 request.options)
        results[mode] = evaluation.run_mode(run, config, out_dir, mode, sub)
        flat.update({f"{mode}.{k}": v for k, v in results[mode]["stats"].items()})
    write_report(os.path.join(out_dir, "report.md"), run, results, skipped, out_dir)
    return {"mode": "all", "modes": list(results), "skipped": skipped,
            "report": os.path.join(out_dir, "report.md"), "stats": flat}
