import json
import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.configs import default
from ebm_jax.evaluation import loaded_run
from ebm_jax.families import ebm, registry
from ebm_jax.runtime import checkpointing, parallel, workdir_files
from ebm_jax.training import guard, trainer
from tests.conftest import FAMILIES, PERSISTENT, family_of, tiny_config

SPEC = ebm.EBM(default.get_config(), (8, 8, 1)).guard_spec  # an image EBM's

FINITE_METRICS = dict(loss=-0.5, energy_gap=0.5, grad_norm_params=2.0, grad_norm_x=1.0,
                      param_norm=10.0, samples_mean=0.0, samples_std=0.5,
                      samples_chain_std=0.3, samples_saturation=0.3)


@pytest.fixture(scope="module")
def one_device():
    return parallel.make_mesh(jax.devices()[:1])


def guard_config(**overrides):
    config = default.get_config().guard
    config.update(overrides)
    return config


@pytest.mark.parametrize("name", SPEC.finite)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_statistic_trips(name, bad):
    trip = guard.check(7, dict(FINITE_METRICS, **{name: bad}), guard_config(), SPEC)
    assert (trip.step, trip.statistic, trip.reason) == (7, name, "not finite")


def test_bounds_on_energy_gap_and_gradient_norm():
    cfg = guard_config(max_energy_gap=1.0, max_grad_norm=3.0)
    assert guard.check(1, FINITE_METRICS, cfg, SPEC) is None
    assert guard.check(1, FINITE_METRICS, guard_config(max_energy_gap=0.4), SPEC).statistic == \
        "energy_gap"
    trip = guard.check(2, dict(FINITE_METRICS, energy_gap=-1.5), cfg, SPEC)
    assert (trip.statistic, trip.value) == ("energy_gap", -1.5)
    assert "guard.max_energy_gap=1" in trip.reason
    assert guard.check(3, dict(FINITE_METRICS, grad_norm_params=3.5), cfg, SPEC).statistic == \
        "grad_norm_params"
    # Bounds of 0 are off.
    assert guard.check(4, dict(FINITE_METRICS, energy_gap=1e9, grad_norm_params=1e9),
                       guard_config(), SPEC) is None
    rows = [(1, FINITE_METRICS), (2, dict(FINITE_METRICS, loss=math.nan)),
            (3, dict(FINITE_METRICS, energy_gap=math.inf))]
    assert guard.first_trip(rows, cfg, SPEC).step == 2


def test_saturation_has_a_default_bound():
    assert guard.check(1, dict(FINITE_METRICS, samples_saturation=0.85), guard_config(),
                       SPEC) is None
    trip = guard.check(5, dict(FINITE_METRICS, samples_saturation=0.97), guard_config(), SPEC)
    assert (trip.statistic, trip.value, trip.reason) == (
        "samples_saturation", 0.97, "|samples_saturation| above guard.max_saturation=0.9")
    assert guard.check(5, dict(FINITE_METRICS, samples_saturation=0.97),
                       guard_config(max_saturation=0.0), SPEC) is None


def test_saturation_is_bounded_for_images_alone():
    """The 1-D mixture's modes lie at +-1.5: most of its samples are beyond +-1."""
    config = default.get_config()
    config.model.name = "mlp"
    toy = ebm.EBM(config, (1,)).guard_spec
    assert guard.check(1, dict(FINITE_METRICS, samples_saturation=0.97), guard_config(),
                       toy) is None
    assert ("samples_saturation", "max_saturation") in SPEC.bounds
    assert toy.growth == SPEC.growth == ("energy_gap",)


def gap_rows(gaps, start=1):
    return [(start + i, dict(FINITE_METRICS, energy_gap=g)) for i, g in enumerate(gaps)]


def test_growth_trips_on_a_gap_far_above_its_recent_median():
    cfg = guard_config(growth_window=10, growth_min_updates=5)
    growth = guard.Growth(cfg, SPEC)
    # Ten updates with |gap| of median 4: a gap of 399 is within 100 times that, 401 is not.
    calm = [3.0, -4.0, 5.0, -4.0, 4.0, 2.0, -6.0, 4.0, -3.0, 5.0]
    assert guard.first_trip(gap_rows(calm + [399.0]), cfg, SPEC, growth) is None
    growth = guard.Growth(cfg, SPEC)
    trip = guard.first_trip(gap_rows(calm + [-401.0, 7.0]), cfg, SPEC, growth)
    assert (trip.step, trip.statistic, trip.value) == (11, "energy_gap", -401.0)
    assert "100 times its recent scale 4, the median |energy_gap| of the last 10 updates" in \
        trip.reason and "guard.max_growth=100" in trip.reason
    # The rows before the trip are the scale; the tripping row is not added.
    assert [s for s, _ in growth.seen["energy_gap"]] == list(range(1, 11))


def test_growth_waits_for_its_first_updates_and_uses_the_floor():
    cfg = guard_config(growth_window=10, growth_floor=1.0, growth_min_updates=5)
    # Four updates seen: too few for a scale, so even 1e6 passes (the bounds are off).
    assert guard.first_trip(gap_rows([0.01] * 4 + [1e6]), cfg, SPEC,
                            guard.Growth(cfg, SPEC)) is None
    # A gap near 0 has the floor as its scale: 99 passes, 101 trips.
    assert guard.first_trip(gap_rows([0.01] * 5 + [99.0]), cfg, SPEC,
                            guard.Growth(cfg, SPEC)) is None
    trip = guard.first_trip(gap_rows([0.01] * 5 + [101.0]), cfg, SPEC, guard.Growth(cfg, SPEC))
    assert trip.step == 6 and "recent scale 1," in trip.reason
    # max_growth 0 is off; a family without growth statistics is never checked.
    off = guard_config(max_growth=0.0, growth_window=10, growth_min_updates=5)
    assert guard.first_trip(gap_rows([0.01] * 5 + [1e6]), off, SPEC,
                            guard.Growth(off, SPEC)) is None
    from ebm_jax.families import generator
    assert guard.Growth(cfg, generator.Generator.guard_spec).names == ()


def test_growth_window_slides_and_rewinds():
    cfg = guard_config(growth_window=4, growth_min_updates=2)
    growth = guard.Growth(cfg, SPEC)
    assert guard.first_trip(gap_rows([1000.0] * 4 + [2.0] * 4), cfg, SPEC, growth) is None
    assert [v for _, v in growth.seen["energy_gap"]] == [2.0] * 4  # only the last 4 are kept
    assert guard.first_trip(gap_rows([201.0], start=9), cfg, SPEC, growth).step == 9
    growth.rewind(6)
    assert [s for s, _ in growth.seen["energy_gap"]] == [5, 6]
    growth.rewind(0)
    assert not growth.seen["energy_gap"]


def test_the_default_guard_stops_a_finite_divergence_like_the_silent_mnist_run():
    """A gap like that of configs/digits.py moved to 32x32 MNIST (within about +-10 for 50
    updates, then 848 at update 83; benchmarks/MNIST_RESULTS.md), every statistic finite and
    the default bounds on the gap and gradient norm off: here a smooth exponential growth
    from update 50, which the default guard catches before update 100."""
    rng = np.random.default_rng(0)
    gaps = list(rng.normal(0.0, 7.0, 50)) + list(7.0 * np.exp(np.linspace(0, 8, 50)))
    cfg = guard_config()
    assert cfg.max_energy_gap == 0 and cfg.max_grad_norm == 0
    trip = guard.first_trip(gap_rows(gaps), cfg, SPEC, guard.Growth(cfg, SPEC))
    assert trip.statistic == "energy_gap" and 50 < trip.step < 100
    assert all(np.isfinite(gaps))


def test_collapse_is_a_small_std_across_chains():
    cfg = guard_config(collapse_std=1e-3)
    assert not guard.collapsed(FINITE_METRICS, cfg, SPEC)
    assert guard.collapsed(dict(FINITE_METRICS, samples_chain_std=1e-5), cfg, SPEC)


def test_record_counts_rollbacks_scales_the_rate_and_survives_a_restart(tmp_path):
    cfg = guard_config(max_rollbacks=2, lr_factor=0.25)
    record = guard.Record.load(str(tmp_path))
    assert (record.rollbacks, record.lr_scale) == (0, 1.0)
    trip = guard.Trip(9, "loss", math.nan, "not finite")
    first = record.rollback(trip, 6, cfg)
    assert (first["event"], first["restored_step"], first["lr_scale"]) == ("rollback", 6, 0.25)
    record.rollback(trip, 6, cfg)
    record.save(str(tmp_path))
    record = guard.Record.load(str(tmp_path))
    assert (record.rollbacks, record.lr_scale) == (2, 0.0625)
    stop = record.rollback(trip, 6, cfg)
    assert stop["event"] == "stop" and record.rollbacks == 2
    message = guard.stop_message(stop)
    assert "between step 6 and step 9" in message and "loss = nan" in message


def poison_params_at(monkeypatch, step: int, times: int, family: str = "ebm",
                     poison=lambda p: p * jnp.nan):
    """Makes the parameters NaN (or ``poison(p)``) right after update ``step``, the first
    ``times`` times it runs."""
    cls = registry.FAMILIES[family_of(family)]
    real = cls.make_update
    fired = []

    def make(*args, **kwargs):
        update = real(*args, **kwargs)

        def poisoned(state, batch):
            state, metrics = update(state, batch)
            if int(state.step) == step and len(fired) < times:
                fired.append(step)
                state = state.replace(params=jax.tree_util.tree_map(poison, state.params))
            return state, metrics
        return poisoned

    monkeypatch.setattr(cls, "make_update", make)
    return fired


def small_config(family="ebm"):
    config = tiny_config(family)
    config.training.num_steps = 6
    config.training.sample_every = 6
    config.training.checkpoint_every = 2
    return config


@pytest.mark.parametrize("family", FAMILIES + (PERSISTENT,))
def test_injected_nan_rolls_back_and_training_finishes(tmp_path, one_device, monkeypatch,
                                                       caplog, family):
    fired = poison_params_at(monkeypatch, step=3, times=1, family=family)
    with caplog.at_level(logging.WARNING):
        state = trainer.train_and_evaluate(small_config(family), str(tmp_path),
                                           mesh=one_device, progress=False)
    assert fired == [3] and int(state.step) == 6
    # NaN parameters after update 3 give a NaN loss in update 4; the last checkpoint is step 2.
    assert "loss = nan at step 4 (not finite); rolled back to step 2" in caplog.text
    rows = workdir_files.read_metrics(str(tmp_path))
    events = [r for r in rows if "event" in r]
    assert len(events) == 1
    assert {k: events[0][k] for k in ("event", "statistic", "tripped_step", "restored_step",
                                      "rollbacks", "lr_scale")} == dict(
        event="rollback", statistic="loss", tripped_step=4, restored_step=2, rollbacks=1,
        lr_scale=0.5)
    updates = [r for r in rows if "event" not in r]
    assert [r["step"] for r in updates] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss"]) for r in updates)
    assert json.load(open(tmp_path / "guard.json")) == {"rollbacks": 1, "lr_scale": 0.5}
    run = loaded_run.load_workdir(str(tmp_path))
    assert run.step == 6 and run.family.name == family_of(family)
    assert all(np.all(np.isfinite(p)) for p in jax.tree_util.tree_leaves(run.params))
    if run.bank is not None:  # the bank (warm-start codes, replay buffer) was rolled back too
        assert np.all(np.isfinite(run.bank))
    assert (run.bank is not None) == (family != "ebm")


def test_a_finite_blow_up_of_the_energy_rolls_back(tmp_path, one_device, monkeypatch, caplog):
    """Parameters scaled by 10 after update 5 scale the ConvNet's energy (positively
    homogeneous in its parameters) by about 10^5: every statistic stays finite, and the guard's
    growth check (scale: the first five updates) catches it at update 6."""
    fired = poison_params_at(monkeypatch, step=5, times=1, poison=lambda p: p * 10.0)
    config = small_config()
    config.training.num_steps, config.training.checkpoint_every = 8, 4
    config.guard.growth_min_updates, config.guard.growth_floor = 5, 1e-6
    config.guard.max_saturation = 0.0  # the growth alone must catch it
    with caplog.at_level(logging.WARNING):
        state = trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device,
                                           progress=False)
    assert fired == [5] and int(state.step) == 8
    rows = workdir_files.read_metrics(str(tmp_path))
    events = [r for r in rows if "event" in r]
    assert [(e["statistic"], e["tripped_step"], e["restored_step"]) for e in events] == [
        ("energy_gap", 6, 4)]
    assert np.isfinite(events[0]["value"]) and "times its recent scale" in events[0]["reason"]
    assert "energy_gap = " in caplog.text and "rolled back to step 4" in caplog.text
    gaps = [abs(r["energy_gap"]) for r in rows if "event" not in r]
    assert max(gaps) < 100 * np.median(gaps[:5])


def test_training_stops_after_max_rollbacks_naming_window_and_statistic(tmp_path, one_device,
                                                                        monkeypatch):
    poison_params_at(monkeypatch, step=3, times=10)
    config = small_config()
    config.guard.max_rollbacks = 2
    with pytest.raises(guard.DivergenceError,
                       match=r"between step 2 and step 4: loss = nan \(not finite\), after 2 "):
        trainer.train_and_evaluate(config, str(tmp_path), mesh=one_device, progress=False)
    events = [r for r in workdir_files.read_metrics(str(tmp_path)) if "event" in r]
    assert [e["event"] for e in events] == ["rollback", "rollback", "stop"]
    assert [e["lr_scale"] for e in events] == [0.5, 0.25, 0.25]
    ckpt = checkpointing.Checkpointer(str(tmp_path))
    assert ckpt.all_steps() == [2]
    ckpt.close()


def test_each_family_names_only_statistics_its_update_reports():
    """A generator has no energy gap and no chain: its spec must not ask for them."""
    from ebm_jax.families import generator, latent_ebm
    gen = dict(loss=1.0, grad_norm_params=2.0, grad_norm_z=0.5, param_norm=9.0, recon_mse=0.1,
               z_std=1.0)
    spec = generator.Generator.guard_spec
    assert guard.check(1, gen, guard_config(max_grad_norm=3.0), spec) is None
    assert guard.check(1, dict(gen, recon_mse=math.nan), guard_config(), spec).statistic == \
        "recon_mse"
    assert not guard.collapsed(gen, guard_config(), spec)
    assert "samples_chain_std" not in spec.finite and spec.collapse is None
    assert latent_ebm.LatentEBM.guard_spec.collapse == "samples_chain_std"
