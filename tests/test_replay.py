import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.core import replay
from ebm_jax.core.prior import Prior


def test_draw_restarts_the_stated_fraction_and_keeps_the_rest():
    prior = Prior()
    buffer = 5.0 + jnp.arange(1000.0)[:, None] * jnp.ones((1, 3))  # outside p_0's box
    draw = jax.jit(lambda k: replay.draw(k, buffer, 64, prior, 0.05))
    counts = []
    for i in range(300):
        d = draw(jax.random.key(i))
        index, restarted = np.asarray(d.index), np.asarray(d.restarted)
        assert len(set(index.tolist())) == 64  # distinct rows
        x0 = np.asarray(d.x0)
        np.testing.assert_array_equal(x0[~restarted], np.asarray(buffer)[index[~restarted]])
        assert np.all(np.abs(x0[restarted]) <= 1.0)  # fresh draws from U(-1, 1)
        counts.append(restarted.sum())
    # 19,200 coins of p = 0.05: standard error 0.0016.
    assert abs(np.sum(counts) / (300 * 64) - 0.05) < 0.006
    assert np.all(np.asarray(replay.draw(jax.random.key(0), buffer, 64, prior, 0.0).restarted)
                  == 0)
    assert np.all(np.asarray(replay.draw(jax.random.key(0), buffer, 64, prior, 1.0).restarted))


def test_write_sets_the_drawn_rows_only():
    buffer = jnp.zeros((10, 2))
    out = replay.write(buffer, jnp.array([7, 2]), jnp.array([[1.0, 2.0], [3.0, 4.0]]))
    expected = np.zeros((10, 2))
    expected[7], expected[2] = [1, 2], [3, 4]
    np.testing.assert_array_equal(out, expected)


def test_init_draws_from_the_prior():
    b = replay.init(jax.random.key(0), 500, (4,), Prior("gaussian", std=2.0))
    assert b.shape == (500, 4)
    assert 1.8 < float(jnp.std(b)) < 2.2
