import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import chain


def counter():
    """x <- x + 1 with a cached copy of step k's index; stats (k, 1 / (k + 1))."""
    def step(state, k, eps):
        x, last = state
        return (x + 1.0, k.astype(x.dtype)), (k.astype(x.dtype), 1.0 / (k + 1.0))
    return chain.Kernel(lambda x: (x, jnp.zeros((), x.dtype)), step, 2)


def test_stats_average_over_the_executed_steps_and_the_state_carries_extras():
    out = chain.run(counter(), jnp.zeros((3, 2)), 4, snapshot_steps=(0, 2, 4))
    np.testing.assert_array_equal(out.x, 4.0)
    np.testing.assert_allclose(out.grad_norm, (0 + 1 + 2 + 3) / 4)
    np.testing.assert_allclose(out.accept_rate, (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, rtol=1e-6)
    np.testing.assert_array_equal(out.snapshots[:, 0, 0], [0.0, 2.0, 4.0])


def test_dynamic_k_skips_the_steps_past_k_in_the_state_and_the_stats():
    run = jax.jit(lambda k: chain.run(counter(), jnp.zeros((2,)), k, num_steps_max=9,
                                      num_steps_min=2, return_path=True))
    for k in (2, 5, 9):
        out = run(k)
        np.testing.assert_array_equal(out.x, float(k))
        assert int(out.num_steps) == k
        np.testing.assert_allclose(out.grad_norm, sum(range(k)) / k)
        assert out.snapshots.shape == (10, 2)
        np.testing.assert_array_equal(out.snapshots[k:, 0], float(k))
