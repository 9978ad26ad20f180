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

from ebm_jax.runtime import checkpointing, distributed, parallel, preemption, validation
from ebm_jax.training import guard, tensorboard, train_step
from ebm_jax.models import nets
from ebm_jax import plotting
from ebm_jax.core import sampler


class _OwnInfoOnly(std_logging.Filter):
    """Lets warnings through, and info only from this package (Orbax logs every save)."""

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or f"{os.sep}ebm_jax{os.sep}" in record.pathname


def quiet_library_logs() -> None:
    """Keeps the console to our own messages and everyone's warnings (for the scripts)."""
    logging.get_absl_handler().addFilter(_OwnInfoOnly())


class MetricsWriter:
    """Appends one JSON object per line to ``workdir/metrics.jsonl``; in a multi-process run
    only process 0 writes."""

    def __init__(self, workdir: str, events: tensorboard.EventLog | None = None):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = distributed.is_main_process()
        self.events = events or tensorboard.EventLog(workdir, "false")

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step)}
        row.update({k: float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()
                    for k, v in metrics.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.events.scalars(step, metrics)

    def event(self, step: int, fields: dict) -> None:
        """Appends a row that records an event (such as a rollback) rather than an update."""
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": int(step), **fields}) + "\n")
        self.events.text(step, "events", json.dumps(fields))

    def truncate(self, step: int) -> None:
        """Drops update rows after ``step``, which the replayed steps log again on resume or
        after a rollback; event rows stay."""
        self.events.truncate(step)
        if not self.enabled or not os.path.exists(self.path):
            return
        rows = [r for r in read_metrics(os.path.dirname(self.path))
                if r["step"] <= step or "event" in r]
        checkpointing.write_atomically(self.path, "".join(json.dumps(r) + "\n" for r in rows))


def read_metrics(workdir: str) -> list[dict]:
    """The rows of ``workdir/metrics.jsonl``; a last line cut short by a kill is skipped."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        lines = [line for line in f if line.strip()]
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    return [json.loads(line) for line in lines]


def write_samples_png(run_sampler, params, key, num: int, path: str, ds, mesh) -> np.ndarray:
    """Every process samples (the chains are split over all devices); process 0 draws."""
    x = distributed.gather(run_sampler(params, key, parallel.round_up(num, mesh)).x)[:num]
    if distributed.is_main_process():
        plotting.save_samples(x, path, ds.is_image, ds.log_density,
                              title=os.path.basename(path))
    return x


class RowLogger:
    """Logs the rows of logged updates: ``metrics.jsonl`` (with steps/s), the progress bar, the
    step callback, and a warning when the samples collapse."""

    def __init__(self, writer: MetricsWriter, config, step: int, bar=None,
                 step_callback: Callable[[int, dict], None] | None = None):
        self.writer, self.bar, self.step_callback = writer, bar, step_callback
        self.log_every, self.total = config.training.log_every, config.training.num_steps
        self.guard_config = config.guard
        self.collapsed = False
        self.restart(step)

    def restart(self, step: int) -> None:
        self.t_last, self.s_last = time.perf_counter(), step

    def write(self, rows: list[tuple[int, dict]]) -> None:
        for done, metrics in rows:
            if not (done % self.log_every == 0 or done == self.total):
                continue
            now = time.perf_counter()
            metrics["steps_per_sec"] = (done - self.s_last) / max(now - self.t_last, 1e-9)
            self.t_last, self.s_last = now, done
            self.writer.write(done, metrics)
            collapsed = guard.collapsed(metrics, self.guard_config)
            if collapsed and not self.collapsed:
                logging.warning(
                    "samples collapsed at step %d: their std across chains is %.3g, below "
                    "guard.collapse_std=%g; every chain ends near the same point", done,
                    float(metrics["samples_chain_std"]), self.guard_config.collapse_std)
            self.collapsed = collapsed
            if self.bar is not None:
                self.bar.set_postfix(gap=f"{float(metrics['energy_gap']):+.3g}",
                                     r_t=f"{float(metrics['grad_norm_x']):.3g}",
                                     std=f"{float(metrics['samples_std']):.3g}")
            if self.step_callback is not None:
                self.step_callback(done, metrics)


def roll_back(trip: guard.Trip, ckpt: checkpointing.Checkpointer, record: guard.Record,
              writer: MetricsWriter, workdir: str, guard_config) -> int:
    """Records a rollback after ``trip`` and returns the step of the checkpoint to restore
    (0: the initial state). Raises guard.DivergenceError when rollbacks are used up."""
    ckpt.wait()
    restored = ckpt.latest_step() or 0
    event = record.rollback(trip, restored, guard_config)
    writer.truncate(restored)
    writer.event(trip.step, event)
    if event["event"] == "stop":
        ckpt.close()
        raise guard.DivergenceError(guard.stop_message(event))
    record.save(workdir)
    logging.warning("divergence: %s; rolled back to step %d with the learning rate scaled by %g "
                    "(rollback %d of at most %d)", trip.describe(), restored, record.lr_scale,
                    record.rollbacks, guard_config.max_rollbacks)
    return restored


def train_and_evaluate(config, workdir: str, *, mesh=None, progress: bool = True,
                       step_callback: Callable[[int, dict], None] | None = None):
    """Trains the EBM of ``config`` in ``workdir``, resuming from its latest readable checkpoint.

    Returns the final TrainState. ``step_callback(step, metrics)`` is called at every logged
    step (after ``step`` updates). Every update is checked by the divergence guard (guard.py):
    a trip rolls back to the last checkpoint with a lower learning rate, or raises
    guard.DivergenceError when rollbacks are used up. SIGTERM or SIGINT saves a checkpoint and
    raises preemption.Preempted. Bad input raises validation.InputError before anything is
    written to the workdir. The latent families (``model.family``) train in
    ``latent_trainer``.
    """
    if config.model.get("family", "ebm") != "ebm":
        from ebm_jax.training import latent_trainer# it imports this module
        return latent_trainer.train_and_evaluate(config, workdir, mesh=mesh, progress=progress,
                                                 step_callback=step_callback)
    ds = validation.load_dataset(config.data, config.seed)
    model = nets.build_model(config.model, ds.shape)
    mesh = parallel.make_mesh() if mesh is None else mesh
    t_cfg, g_cfg = config.training, config.guard
    validation.check_batch_size(t_cfg.batch_size, mesh)
    validation.check_same_model(workdir, config, ds.shape)
    events = tensorboard.EventLog(workdir, t_cfg.tensorboard)

    record = guard.Record.load(workdir)

    def compile_update(lr_scale: float):
        tx = train_step.make_optimizer(guard.scaled_optim(config.optim, lr_scale), t_cfg.num_steps)
        return tx, train_step.make_train_step(model.energy, tx, config, ds.shape, mesh,
                                              input_grad=model.input_grad)

    tx, update = compile_update(record.lr_scale)
    init = jax.jit(lambda key: train_step.init_state(model.init(key), tx),
                   out_shardings=parallel.replicated(mesh))
    fresh_state = lambda: init(train_step.init_key(config.seed))
    ckpt = checkpointing.Checkpointer(workdir, t_cfg.keep_checkpoints)
    state = validation.restore(ckpt, fresh_state())
    if int(state.step):
        logging.info("resumed from %s at step %d", workdir, int(state.step))
    checkpointing.write_run_files(workdir, config, ds.shape, ds.is_image)
    logging.info("%s: %d examples of shape %s; %d parameters; %d devices", ds.name, len(ds),
                 ds.shape, nets.count_params(state.params), mesh.devices.size)

    run_sampler = sampler.make_sampler(model.energy, config.sampling, ds.shape, mesh=mesh,
                                       input_grad=model.input_grad)
    plot_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    writer = MetricsWriter(workdir, events)
    writer.truncate(int(state.step))
    sample_dir = os.path.join(workdir, "samples")
    os.makedirs(sample_dir, exist_ok=True)

    step, total = int(state.step), int(t_cfg.num_steps)
    every = lambda n: step % n == 0 or step == total
    bar = None
    if progress and distributed.is_main_process():
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=step, desc="train", dynamic_ncols=True)
    logger = RowLogger(writer, config, step, bar, step_callback)
    pending = []
    with preemption.StopRequest() as stop:
        while step < total:
            batch = ds.batch(step, t_cfg.batch_size, config.seed, jax.process_index(),
                             jax.process_count())
            state, metrics = update(state, parallel.shard_batch(batch, mesh))
            step += 1
            pending.append((step, metrics))
            if bar is not None:
                bar.update(1)
            if not (every(t_cfg.log_every) or every(t_cfg.sample_every)
                    or every(t_cfg.checkpoint_every) or stop.signum is not None):
                continue
            # Every update is checked, but the host waits for the device only here.
            rows, pending = jax.device_get(pending), []
            trip = guard.first_trip(rows, g_cfg)
            if trip is not None:
                step = roll_back(trip, ckpt, record, writer, workdir, g_cfg)
                _, update = compile_update(record.lr_scale)
                state = ckpt.restore(state, step) if step else fresh_state()
                logger.restart(step)
                if bar is not None:
                    bar.reset(total)
                    bar.update(step)
                continue
            logger.write(rows)
            if every(t_cfg.sample_every):
                png = os.path.join(sample_dir, f"step_{step:07d}.png")
                write_samples_png(run_sampler, state.params, jax.random.fold_in(plot_key, step),
                                  t_cfg.num_plot_samples, png, ds, mesh)
                events.image(step, "samples", png)
            if every(t_cfg.checkpoint_every) or stop.signum is not None:
                ckpt.save(state)
            if stop.signum is not None:
                ckpt.close()
                raise preemption.Preempted(stop.signum, step)
    if bar is not None:
        bar.close()
    ckpt.close()
    return state
