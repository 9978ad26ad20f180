"""Background prefetch: a thread reads the next batches while the device runs the current step.

    with data.prefetch_batches(ds, step, total, batch_size, seed,
                               jax.process_index(), jax.process_count()) as batches:
        for step, x_NHWC in batches:           # exactly ds.batch(step, ...), in step order
            state, metrics = update(state, parallel.shard_batch(x_NHWC, mesh))
            if must_restart_at_another_step:    # rollback: leave, then prefetch again from there
                break

Leaving the `with` block (break, return, an exception such as preemption.Preempted) stops the
thread and waits for it; an exception raised while reading a batch is raised again by the
`for` at that batch's step. Batches are pure functions of the step (`batch_indices`), so a
loop that restarts at step s with a new prefetcher sees what it would have read itself.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Iterator

_ITEM, _DONE, _ERROR = "item", "done", "error"


def _work(fn: Callable[[int], Any], start: int, stop: int, out: queue.Queue,
          stopping: threading.Event) -> None:
    # Holds no reference to the Prefetcher, so that an abandoned one can be collected.
    def put(item) -> bool:
        while not stopping.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for step in range(start, stop):
            if stopping.is_set() or not put((_ITEM, step, fn(step))):
                return
    except BaseException as error:  # handed to the consumer, which raises it
        put((_ERROR, None, error))
        return
    put((_DONE, None, None))


class Prefetcher:
    """Iterates `(step, fn(step))` for step in range(start, stop), computed in a thread that
    runs up to `depth` steps ahead of the consumer.

    Use it as a context manager (or call `close()`): leaving early stops the thread. An
    exception raised by `fn` is raised by `__next__` in its place; iteration then ends. A
    prefetcher dropped without `close()` stops its thread when it is garbage-collected.
    """

    def __init__(self, fn: Callable[[int], Any], start: int, stop: int, depth: int = 2,
                 close_timeout_s: float = 30.0):
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}.")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stopping = threading.Event()
        self._finished = False
        self._close_timeout_s = close_timeout_s
        self._thread = threading.Thread(
            target=_work, args=(fn, int(start), int(stop), self._queue, self._stopping),
            name="ebm_jax-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self

    def __next__(self) -> tuple[int, Any]:
        if self._finished:
            raise StopIteration
        while True:
            try:
                kind, step, value = self._queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise RuntimeError("the prefetch thread stopped without a result")
        if kind == _ITEM:
            return step, value
        self.close()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stops the thread and waits for it (for the batch it is reading, at most)."""
        self._finished = True
        self._stopping.set()
        while True:  # frees a worker blocked on a full queue at once
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(self._close_timeout_s)
            if self._thread.is_alive():
                logging.warning("prefetch thread still reading after %.0f s; left as a daemon",
                                self._close_timeout_s)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        if not getattr(self, "_finished", True):
            self._stopping.set()


def prefetch_batches(ds, start_step: int, total: int, batch_size: int, seed: int,
                     process_index: int = 0, process_count: int = 1, depth: int = 2,
                     transform: Callable[[Any], Any] | None = None) -> Prefetcher:
    """A `Prefetcher` of `(step, ds.batch(step, batch_size, seed, process_index, process_count))`
    for step in range(start_step, total), `depth` batches ahead.

    `transform`, if given, is applied to each batch in the thread too: e.g.
    `lambda x: parallel.shard_batch(x, mesh)` also overlaps the copy to the devices.
    """
    def read(step: int):
        batch = ds.batch(step, batch_size, seed, process_index, process_count)
        return batch if transform is None else transform(batch)

    return Prefetcher(read, start_step, total, depth)
