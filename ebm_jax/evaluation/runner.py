"""What ``evaluate.py`` calls: one mode, or all that apply, on a trained workdir.

A mode runs into a scratch directory and its files move to ``WORKDIR/eval/`` only when it has
finished, so bad input (refused before anything runs) or a failure midway overwrites nothing.
A mode that does not apply to the run's family or data refuses with one line
(``validation.InputError``); ``--mode=all`` runs every mode that applies and lists the others
with their reasons in ``eval/report.md``.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ebm_jax.core import sampler
from ebm_jax.evaluation import common, loaded_run
from ebm_jax.evaluation import options as options_lib
from ebm_jax.evaluation.modes import MODES
from ebm_jax.runtime import distributed, tensorboard, validation, workdir_files

ALL = "all"


def mode_names() -> list[str]:
    return list(MODES) + [ALL]


def declared_options() -> dict[str, list[tuple[str, options_lib.Option]]]:
    """Every registered mode's options by name (``options.by_name``): what the command line's
    flags and the checks of ``evaluate`` are built from."""
    return options_lib.by_name(MODES.values())


def refusal(mode: common.Mode, run, config, request: common.Request) -> str | None:
    """Why ``mode`` cannot run here (one paragraph), or None."""
    reason = mode.refusal(run)
    if reason is None and mode.check is not None:
        try:
            mode.check(run, config, request)
        except validation.InputError as error:
            reason = str(error)
    return reason


def run_mode(run, config, out_dir: str, name: str, request: common.Request,
             overrides: dict[str, Any] | None = None) -> dict:
    """Runs one mode into ``out_dir`` and writes its dict to ``out_dir/<name>.json``, its
    protocol naming the config it used: the run's config in force at the checkpoint's step
    (``run.config_changes`` lists the recorded changes applied) and this call's
    ``overrides``."""
    result = MODES[name].run(run, config, out_dir, request)
    result.setdefault("protocol", {}).update(
        config_overrides=dict(overrides or {}),
        config_changes_applied=[{"step": e["step"], "changes": e["changes"]}
                                for e in run.config_changes])
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_report(path: str, run, results: dict, skipped: dict, out_dir: str):
    lines = [f"# Evaluation at step {run.step}", "",
             f"Family `{run.family.name}`, model `{run.config.model.name}`, data "
             f"`{run.config.data.dataset}`, trained with K = "
             f"{sampler.num_steps(run.config.sampling)}. "
             "Every figure comes from fresh samples; each mode's JSON holds its exact "
             "protocol.", ""]
    for name, result in results.items():
        lines += [f"## {name}", "", "| statistic | value |", "| --- | --- |"]
        lines += [f"| {k} | {_format(v)} |" for k, v in result["stats"].items()]
        lines.append("")
        for note in result.get("notes", []):
            lines += [note, ""]
        for file in sorted(os.listdir(out_dir)):
            if file.startswith(name) and file.endswith(".png"):
                lines += [f"![{file}]({file})", ""]
    if skipped:
        lines += ["## Not run", ""] + [f"- `{name}`: {reason}" for name, reason in skipped.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_all(run, config, out_dir: str, request: common.Request,
            overrides: dict[str, Any] | None = None) -> dict:
    """Every registered mode that applies, each with its own default number of samples; the
    others are listed with their reasons."""
    results, skipped, flat = {}, {}, {}
    for name, mode in MODES.items():
        reason = refusal(mode, run, config, request)
        if reason is None and not mode.in_all:
            reason = f"not part of --mode=all (it takes long); run --mode={name} on its own"
        if reason is not None:
            skipped[name] = " ".join(reason.split())  # whole, on one line
            continue
        sub = common.Request(common.default_num_samples(config, name), request.seed,
                             request.options)
        results[name] = run_mode(run, config, out_dir, name, sub, overrides)
        flat.update({f"{name}.{k}": v for k, v in results[name]["stats"].items()})
    write_report(os.path.join(out_dir, "report.md"), run, results, skipped, out_dir)
    return {"mode": ALL, "modes": list(results), "skipped": skipped,
            "report": "report.md", "stats": flat}


def evaluate(workdir: str, mode: str = "samples", *, num_samples: int | None = None,
             seed: int | None = None, step: int | None = None,
             overrides: dict[str, Any] | None = None, **options) -> dict:
    """Runs ``mode`` (or ``all``) on the checkpoint of ``workdir`` and writes its files to
    ``workdir/eval/``. ``options`` are the mode's own settings (``common.Mode.options``),
    checked as they are declared; ``num_samples`` defaults to ``common.default_num_samples``.
    Bad input raises ``validation.InputError`` before anything is written."""
    if mode not in MODES and mode != ALL:
        raise validation.InputError(f"unknown mode {mode!r}; choose one of "
                                    f"{', '.join(mode_names())}")
    options_lib.check(dict(options, num_samples=num_samples, seed=seed, step=step),
                      declared_options())
    run = loaded_run.load_workdir(workdir, step)
    config = common.apply_overrides(run.config, overrides)
    num_samples = int(num_samples or common.default_num_samples(config, mode))
    seed = int(config.eval.seed if seed is None else seed)
    request = common.Request(num_samples, seed, options)
    if mode != ALL:
        reason = refusal(MODES[mode], run, config, request)
        if reason is not None:
            raise validation.InputError(reason)
    out_dir = os.path.join(workdir, workdir_files.EVAL_DIR)
    with tempfile.TemporaryDirectory(prefix="ebm_jax_eval_") as scratch:
        if mode == ALL:
            result = run_all(run, config, scratch, request, overrides)
            with open(os.path.join(scratch, "all.json"), "w") as f:
                json.dump(result, f, indent=2)
        else:
            result = run_mode(run, config, scratch, mode, request, overrides)
        # Every process runs the mode, for its share of the collective computations; the
        # files of the others are dropped with their scratch directory.
        if distributed.is_main_process():
            workdir_files.publish_eval(scratch, workdir)
    tensorboard.EventLog(workdir, config.training.get("tensorboard", "auto")).evaluation(
        run.step, mode, result["stats"])
    summary = ", ".join(f"{k}={v:.4g}" for k, v in result["stats"].items()
                        if isinstance(v, (int, float)))
    result["summary_line"] = f"{mode} at step {run.step} -> {out_dir}; {summary}"
    if mode == ALL and result["skipped"]:
        result["summary_line"] += "\n" + "\n".join(
            f"skipped {name}: {reason}" for name, reason in result["skipped"].items())
    return result
