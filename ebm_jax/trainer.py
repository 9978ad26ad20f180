"""The training loop: data, model, sharded updates, logging, pictures and checkpoints."""
from __future__ import annotations

import json
import logging as std_logging
import os
import time
from typing import Callable

import jax
import numpy as np
from absl import logging

from ebm_jax import checkpointing, data, models, parallel, plotting, sampler, train_step


class _OwnInfoOnly(std_logging.Filter):
    """Lets warnings through, and info only from this package (Orbax logs every save)."""

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or f"{os.sep}ebm_jax{os.sep}" in record.pathname


def quiet_library_logs() -> None:
    """Keeps the console to our own messages and everyone's warnings (for the scripts)."""
    logging.get_absl_handler().addFilter(_OwnInfoOnly())


class MetricsWriter:
    """Appends one JSON object per line to ``workdir/metrics.jsonl``."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "metrics.jsonl")

    def write(self, step: int, metrics: dict) -> None:
        row = {"step": int(step)}
        row.update({k: float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()
                    for k, v in metrics.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def truncate(self, step: int) -> None:
        """Drops rows after ``step``: on resume they are logged again by the replayed steps."""
        if not os.path.exists(self.path):
            return
        rows = [r for r in read_metrics(os.path.dirname(self.path)) if r["step"] <= step]
        with open(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def read_metrics(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_samples_png(run_sampler, params, key, num: int, path: str, ds) -> np.ndarray:
    x = np.asarray(jax.device_get(run_sampler(params, key, num).x))
    plotting.save_samples(x, path, ds.is_image, ds.log_density, title=os.path.basename(path))
    return x


def train_and_evaluate(config, workdir: str, *, mesh=None, progress: bool = True,
                       step_callback: Callable[[int, dict], None] | None = None):
    """Trains the EBM of ``config`` in ``workdir``, resuming from its latest checkpoint.

    Returns the final TrainState. ``step_callback(step, metrics)`` is called at every logged
    step (after ``step`` updates). The latent families (``model.family``) train in
    ``latent_trainer``.
    """
    if config.model.get("family", "ebm") != "ebm":
        from ebm_jax import latent_trainer  # it imports this module
        return latent_trainer.train_and_evaluate(config, workdir, mesh=mesh, progress=progress,
                                                 step_callback=step_callback)
    os.makedirs(workdir, exist_ok=True)
    ds = data.get_dataset(config.data, seed=config.seed)
    model = models.build_model(config.model, ds.shape)
    mesh = parallel.make_mesh() if mesh is None else mesh
    t_cfg = config.training
    parallel.check_batch_size(t_cfg.batch_size, mesh)

    tx = train_step.make_optimizer(config.optim, t_cfg.num_steps)
    init = jax.jit(lambda key: train_step.init_state(model.init(key), tx),
                   out_shardings=parallel.replicated(mesh))
    state = init(train_step.init_key(config.seed))
    ckpt = checkpointing.Checkpointer(workdir, t_cfg.keep_checkpoints)
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
        logging.info("resumed from %s at step %d", workdir, int(state.step))
    checkpointing.write_run_files(workdir, config, ds.shape, ds.is_image)
    logging.info("%s: %d examples of shape %s; %d parameters; %d devices", ds.name, len(ds),
                 ds.shape, models.count_params(state.params), mesh.devices.size)

    update = train_step.make_train_step(model.energy, tx, config, ds.shape, mesh)
    run_sampler = sampler.make_sampler(model.energy, config.sampling, ds.shape)
    plot_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    writer = MetricsWriter(workdir)
    writer.truncate(int(state.step))
    sample_dir = os.path.join(workdir, "samples")
    os.makedirs(sample_dir, exist_ok=True)

    start, total = int(state.step), int(t_cfg.num_steps)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True)
    t_last, s_last = time.perf_counter(), start
    for step in range(start, total):
        batch = ds.batch(step, t_cfg.batch_size, config.seed)
        state, metrics = update(state, parallel.shard_batch(batch, mesh))
        done = step + 1
        if done % t_cfg.log_every == 0 or done == total:
            metrics = jax.device_get(metrics)
            now = time.perf_counter()
            metrics["steps_per_sec"] = (done - s_last) / max(now - t_last, 1e-9)
            writer.write(done, metrics)
            if not np.isfinite(float(metrics["loss"])):
                raise FloatingPointError(
                    f"non-finite loss at step {done} (last finite log at step {s_last}); "
                    f"lower optim.learning_rate or restart from a checkpoint before {done}")
            t_last, s_last = now, done
            if bar is not None:
                bar.set_postfix(gap=f"{float(metrics['energy_gap']):+.3g}",
                                grad_x=f"{float(metrics['grad_norm_x']):.3g}")
            if step_callback is not None:
                step_callback(done, metrics)
        if done % t_cfg.sample_every == 0 or done == total:
            write_samples_png(run_sampler, state.params, jax.random.fold_in(plot_key, done),
                              t_cfg.num_plot_samples,
                              os.path.join(sample_dir, f"step_{done:07d}.png"), ds)
        if done % t_cfg.checkpoint_every == 0 or done == total:
            ckpt.save(state)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    ckpt.close()
    return state
