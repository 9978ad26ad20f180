"""The training loop of the latent families (``model.family`` latent_ebm or generator).

It mirrors ``trainer.train_and_evaluate`` and writes the same workdir: ``config.json``,
``meta.json`` (with ``bank_size``, the rows of the warm-start bank), ``checkpoints/`` (the
LatentTrainState, bank included), ``metrics.jsonl`` and ``samples/step_*.png``.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import jax
import numpy as np
from absl import logging

from ebm_jax.runtime import checkpointing, parallel
from ebm_jax import data
from ebm_jax.families import latent_chains
from ebm_jax.models import latent_nets, nets
from ebm_jax.training import latent_train_step, train_step, trainer


def train_and_evaluate(config, workdir: str, *, mesh=None, progress: bool = True,
                       step_callback: Callable[[int, dict], None] | None = None):
    """Trains the latent model of ``config`` in ``workdir`` by Monte Carlo EM, resuming from
    its latest checkpoint. Returns the final LatentTrainState; ``step_callback(step,
    metrics)`` is called at every logged step."""
    os.makedirs(workdir, exist_ok=True)
    ds = data.get_dataset(config.data, seed=config.seed)
    model = latent_nets.build_latent_model(config.model, ds.shape)
    mesh = parallel.make_mesh() if mesh is None else mesh
    t_cfg, warm = config.training, config.inference.start == "warm"
    parallel.check_batch_size(t_cfg.batch_size, mesh)

    tx = train_step.make_optimizer(config.optim, t_cfg.num_steps)
    bank_size = latent_train_step.bank_rows(len(ds), mesh.devices.size) if warm else 0
    init = jax.jit(lambda key: latent_train_step.init_state(model, key, tx, config.inference,
                                                            bank_size),
                   out_shardings=latent_train_step.state_shardings(mesh, warm))
    state = init(train_step.init_key(config.seed))
    ckpt = checkpointing.Checkpointer(workdir, t_cfg.keep_checkpoints)
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
        logging.info("resumed from %s at step %d", workdir, int(state.step))
    checkpointing.write_run_files(workdir, config, ds.shape, ds.is_image, bank_size=bank_size)
    logging.info("%s: %d examples of shape %s; %s with d=%d, %s start; %d parameters; "
                 "%d devices", ds.name, len(ds), ds.shape, model.family, model.latent_dim,
                 config.inference.start, nets.count_params(state.params), mesh.devices.size)

    update = latent_train_step.make_train_step(model, tx, config, mesh)
    run_sampler = latent_chains.make_sampler(model, config)
    plot_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    writer = trainer.MetricsWriter(workdir)
    writer.truncate(int(state.step))
    sample_dir = os.path.join(workdir, "samples")
    os.makedirs(sample_dir, exist_ok=True)

    start, total = int(state.step), int(t_cfg.num_steps)
    t_last, s_last = time.perf_counter(), start
    for step in range(start, total):
        index = data.batch_indices(len(ds), t_cfg.batch_size, step, config.seed)
        state, metrics = update(state, parallel.shard_batch(ds.get(index), mesh),
                                parallel.shard_batch(index.astype(np.int32), mesh))
        done = step + 1
        if done % t_cfg.log_every == 0 or done == total:
            metrics = jax.device_get(metrics)
            now = time.perf_counter()
            metrics["steps_per_sec"] = (done - s_last) / max(now - t_last, 1e-9)
            writer.write(done, metrics)
            if not np.isfinite(float(metrics["loss"])):
                raise FloatingPointError(
                    f"non-finite loss at step {done} (last finite log at step {s_last}); "
                    f"lower optim.learning_rate or the chains' step sizes")
            t_last, s_last = now, done
            if progress:
                logging.info("step %d: loss %.4g", done, float(metrics["loss"]))
            if step_callback is not None:
                step_callback(done, metrics)
        if done % t_cfg.sample_every == 0 or done == total:
            trainer.write_samples_png(run_sampler, state.params, jax.random.fold_in(plot_key, done),
                                      t_cfg.num_plot_samples,
                                      os.path.join(sample_dir, f"step_{done:07d}.png"), ds,
                                      mesh)
        if done % t_cfg.checkpoint_every == 0 or done == total:
            ckpt.save(state)
    ckpt.close()
    return state
