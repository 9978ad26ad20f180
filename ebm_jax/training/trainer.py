"""The training loop of every model family: data, sharded updates, the divergence guard,
pre-emption, checkpoints, logs and pictures.

What varies between families (the state, the update, the sampler, the statistics the guard
checks) comes from the run's ``Family`` (``families/base.py``); everything here is shared.
"""
from __future__ import annotations

import contextlib
import logging as std_logging
import os
import time
from typing import Callable

import jax
import numpy as np
from absl import logging

from ebm_jax import data, plotting
from ebm_jax.core import keys
from ebm_jax.families import base, registry, run_state
from ebm_jax.models import nets
from ebm_jax.runtime import (checkpointing, distributed, parallel, preemption, tensorboard,
                             validation, workdir_files)
from ebm_jax.training import guard, optim


class _OwnInfoOnly(std_logging.Filter):
    """Lets warnings through, and info only from this package (Orbax logs every save)."""

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or f"{os.sep}ebm_jax{os.sep}" in record.pathname


def quiet_library_logs() -> None:
    """Keeps the console to our own messages and everyone's warnings (for the scripts)."""
    logging.get_absl_handler().addFilter(_OwnInfoOnly())


IN_FLIGHT = 2  # updates the host may dispatch ahead of the device


def limit_in_flight(pending: list, limit: int = IN_FLIGHT) -> None:
    """Waits until at most ``limit`` of the dispatched updates in ``pending`` (``(step,
    metrics)`` pairs, oldest first) are unfinished.

    JAX dispatches asynchronously: without a bound, the host runs up to ``log_every`` updates
    ahead of the device, and a stop request waits for all of them before its checkpoint (64 s
    after SIGTERM for ``configs/generator_mnist5k.py`` on 2 shared CPU cores, past the 30 s
    that schedulers commonly allow). Each update depends on the last, so waiting for one
    waits for every earlier one; ``limit`` updates still queue, so the device never idles.
    """
    if len(pending) > limit:
        jax.block_until_ready(pending[-limit - 1][1])


def write_samples_png(run_sampler, params, key, num: int, workdir: str, step: int, ds,
                      mesh) -> str:
    """Every process samples (the chains are split over all devices); process 0 draws the grid
    of ``step`` into the workdir's ``samples/``. Returns its path."""
    x = distributed.gather(run_sampler(params, key, parallel.round_up(num, mesh)).x)[:num]
    path = workdir_files.sample_png_path(workdir, step)
    if distributed.is_main_process():
        path = workdir_files.write_sample_png(workdir, step, lambda p: plotting.save_samples(
            x, p, ds.is_image, ds.log_density, title=f"short-run samples at update {step}"))
    return path


class RowLogger:
    """Logs the rows of logged updates: ``metrics.jsonl`` (with steps/s), the progress bar, the
    step callback, and a warning when the samples collapse."""

    def __init__(self, writer: workdir_files.MetricsWriter, config, family, step: int, bar=None,
                 step_callback: Callable[[int, dict], None] | None = None):
        self.writer, self.bar, self.step_callback = writer, bar, step_callback
        self.spec, self.fields = family.guard_spec, family.progress_fields
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
            collapsed = guard.collapsed(metrics, self.guard_config, self.spec)
            if collapsed and not self.collapsed:
                logging.warning(
                    "samples collapsed at step %d: their std across chains is %.3g, below "
                    "guard.collapse_std=%g; every chain ends near the same point", done,
                    float(metrics[self.spec.collapse]), self.guard_config.collapse_std)
            self.collapsed = collapsed
            if self.bar is not None:
                self.bar.set_postfix({label: f"{float(metrics[name]):.3g}"
                                      for label, name in self.fields.items()})
            if self.step_callback is not None:
                self.step_callback(done, metrics)


def roll_back(trip: guard.Trip, ckpt: checkpointing.Checkpointer, record: guard.Record,
              writer: workdir_files.MetricsWriter, workdir: str, guard_config) -> int:
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


def batch_reader(ds: data.Dataset, batch_size: int, seed: int, mesh):
    """``(read, place)``: ``read(step)`` gives this process's rows of the global batch of
    ``step`` and their indices in the data set, as host arrays (every process reads only its
    own rows, ``data.process_slice``); ``place(rows)`` puts them on the mesh as one global
    ``Batch`` split along its data axis. ``read`` runs in the prefetch thread."""
    rows = data.process_slice(batch_size, jax.process_index(), jax.process_count())

    def read(step: int):
        index = data.batch_indices(len(ds), batch_size, step, seed)[rows]
        return index.astype(np.int32), ds.get(index)

    def place(host) -> base.Batch:
        index, x = host
        return base.Batch(parallel.shard_batch(x, mesh), parallel.shard_batch(index, mesh))

    return read, place


def state_meta(family, workdir: str, num_examples: int, mesh) -> dict:
    """The family's ``state_meta``; a workdir that already has it keeps its saved values (the
    checkpoints hold state of those shapes)."""
    meta = family.state_meta(num_examples, mesh)
    saved = workdir_files.read_meta(workdir) if os.path.isdir(workdir) else None
    if meta and saved is not None:
        meta = {k: saved.get(k, v) for k, v in meta.items()}
    return meta


def train_and_evaluate(config, workdir: str, *, mesh=None, progress: bool = True,
                       step_callback: Callable[[int, dict], None] | None = None,
                       allow_config_change: bool = False):
    """Trains the model of ``config`` in ``workdir``, whatever its family, resuming from its
    latest readable checkpoint, and returns the final TrainState.

    ``step_callback(step, metrics)`` is called at every logged step (after ``step`` updates).
    Every update is checked by the divergence guard (guard.py): a trip rolls back to the last
    checkpoint with a lower learning rate, or raises guard.DivergenceError when rollbacks are
    used up. SIGTERM or SIGINT saves a checkpoint and raises preemption.Preempted. Bad input
    raises validation.InputError before anything is written to the workdir.

    A resumed workdir keeps its config.json: a config that changes the run's protocol
    (``runtime/config_changes.py``) is refused unless ``allow_config_change``; every change
    made is recorded in config_history.json with the step from which it holds.
    """
    validation.check_workdir(workdir)
    validation.check_values(config)
    ds = validation.load_dataset(config.data, config.seed)
    family = validation.checked(registry.build_family, config, ds.shape)
    mesh = parallel.make_mesh() if mesh is None else mesh
    training_config, guard_config = config.training, config.guard
    validation.check_batch_size(training_config.batch_size, mesh)
    changes = validation.check_resume(workdir, config, ds.shape, allow_config_change)
    meta = state_meta(family, workdir, len(ds), mesh)
    events = tensorboard.EventLog(workdir, training_config.tensorboard)
    record = guard.Record.load(workdir)
    growth = guard.Growth(guard_config, family.guard_spec)

    def compile_update(lr_scale: float):
        tx = optim.make_optimizer(optim.scaled_optim(config.optim, lr_scale),
                                  training_config.num_steps)
        return tx, family.make_update(tx, mesh, meta)

    tx, update = compile_update(record.lr_scale)
    init = run_state.initializer(family, tx, mesh, meta)
    fresh_state = lambda: init(keys.init_key(config.seed))
    ckpt = checkpointing.Checkpointer(workdir, training_config.keep_checkpoints)
    state, _ = run_state.restore_state(ckpt, lambda _: fresh_state())
    if int(state.step):
        logging.info("resumed from %s at step %d", workdir, int(state.step))
    workdir_files.write_run_files(workdir, config, ds.shape, ds.is_image, **meta)
    workdir_files.record_changes(workdir, int(state.step), changes)
    for change in changes:
        logging.info("for the updates after step %d, %s (recorded in %s)", int(state.step),
                     change.describe(), workdir_files.HISTORY_FILE)
    logging.info("%s: %d examples of shape %s; %s; %d parameters; %d devices", ds.name, len(ds),
                 ds.shape, family.describe(), nets.count_params(state.params),
                 mesh.devices.size)

    run_sampler = family.make_sampler(mesh=mesh)
    read_rows, place = batch_reader(ds, training_config.batch_size, config.seed, mesh)
    writer = workdir_files.MetricsWriter(workdir, events)
    writer.truncate(int(state.step))

    step, total = int(state.step), int(training_config.num_steps)
    every = lambda n: step % n == 0 or step == total
    bar = None
    if progress and distributed.is_main_process():
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=step, desc="train", dynamic_ncols=True)
    logger = RowLogger(writer, config, family, step, bar, step_callback)
    pending = []
    # The host reads the next batches in a thread while the device runs the update.
    batches = data.Prefetcher(read_rows, step, total)
    with preemption.StopRequest() as stop, contextlib.ExitStack() as closing:
        closing.callback(lambda: batches.close())
        while step < total:
            _, rows = next(batches)
            state, metrics = update(state, place(rows))
            step += 1
            pending.append((step, metrics))
            limit_in_flight(pending)
            if bar is not None:
                bar.update(1)
            if not (every(training_config.log_every) or every(training_config.sample_every)
                    or every(training_config.checkpoint_every) or stop.signum is not None):
                continue
            # Every update is checked, but the host reads the metrics only here.
            rows, pending = jax.device_get(pending), []
            trip = guard.first_trip(rows, guard_config, family.guard_spec, growth)
            if trip is not None:
                step = roll_back(trip, ckpt, record, writer, workdir, guard_config)
                growth.rewind(step)
                _, update = compile_update(record.lr_scale)
                state = ckpt.restore(state, step) if step else fresh_state()
                batches.close()
                batches = data.Prefetcher(read_rows, step, total)
                logger.restart(step)
                if bar is not None:
                    bar.reset(total)
                    bar.update(step)
                continue
            logger.write(rows)
            if every(training_config.sample_every):
                png = write_samples_png(run_sampler, state.params,
                                        keys.plot_key(config.seed, step),
                                        training_config.num_plot_samples, workdir, step, ds, mesh)
                events.image(step, "samples", png)
            if every(training_config.checkpoint_every) or stop.signum is not None:
                ckpt.save(state)
            if stop.signum is not None:
                ckpt.close()
                raise preemption.Preempted(stop.signum, step)
    if bar is not None:
        bar.close()
    ckpt.close()
    return state
