"""Which fields are a run's protocol, and the differences between two configs."""
from ebm_jax.configs import digits
from ebm_jax.configs import test as test_config
from ebm_jax.runtime import config_changes


def changed(**fields):
    config = test_config.get_config()
    for path, value in fields.items():
        block, name = path.split("__")
        config[block][name] = value
    return config_changes.differences(test_config.get_config(), config)


def test_fields_that_change_what_is_learned_or_sampled_are_protocol():
    for path, value in [("sampling__num_steps", 7), ("sampling__noise_std", 0.02),
                        ("model__nf", 16), ("optim__learning_rate", 1e-3),
                        ("optim__schedule", "cosine"), ("training__batch_size", 32),
                        ("training__data_noise_std", 0.1), ("data__dataset", "mnist5k"),
                        ("guard__max_rollbacks", 1)]:
        [change] = changed(**{path: value})
        assert change.protocol, path
        assert change.field == path.replace("__", ".")


def test_cadence_logging_eval_and_the_length_of_a_constant_rate_run_are_not():
    changes = changed(training__log_every=5, training__checkpoint_every=3,
                      training__sample_every=9, training__tensorboard="false",
                      eval__num_samples=99, sampling__unroll=1, training__num_steps=40)
    assert [c.field for c in changes] == [
        "eval.num_samples", "sampling.unroll", "training.checkpoint_every", "training.log_every",
        "training.num_steps", "training.sample_every", "training.tensorboard"]
    assert not any(c.protocol for c in changes)
    num_steps = [c for c in changes if c.field == "training.num_steps"][0]
    assert (num_steps.saved, num_steps.new) == (4, 40)
    assert not changed(training__num_steps=2)[0].protocol  # stopped sooner


def test_the_length_is_protocol_when_a_schedule_decays_until_its_end():
    saved, new = digits.get_config(), digits.get_config()  # cosine until training.num_steps
    new.training.num_steps = 4000
    [change] = config_changes.differences(saved, new)
    assert change.protocol
    saved.optim.decay_steps = new.optim.decay_steps = 2000  # a fixed decay: no longer
    assert not config_changes.differences(saved, new)[0].protocol
    saved.training.data_noise_schedule = new.training.data_noise_schedule = "linear"
    assert config_changes.differences(saved, new)[0].protocol  # the data noise decays


def test_fields_only_one_side_has_do_not_count_and_apply_replays_changes():
    saved = test_config.get_config().to_dict()
    del saved["sampling"]["grad_impl"]
    new = test_config.get_config()
    new.sampling.num_steps = 9
    changes = config_changes.differences(saved, new)
    assert [(c.field, c.saved, c.new) for c in changes] == [("sampling.num_steps", 5, 9)]
    tree = config_changes.apply({"sampling": {"num_steps": 5}}, [c.to_json() for c in changes])
    assert tree == {"sampling": {"num_steps": 9}}
