"""The short-run EBM of the paper: f_theta(x), learned on the energy gap.

For a mini-batch of m data points x_i (plus N(0, sigma_data^2) noise) and m fresh short-run
samples y_i = M_theta(z_i), the update is a step of the optimizer on

    L(theta) = mean_i f_theta(y_i) - mean_i f_theta(x_i),

whose negative gradient is the usual maximum-likelihood direction with the model expectation
replaced by the short-run samples. The samples are constants: no gradient flows through the
chain (it runs on ``stop_gradient(params)``).

With ``training.chains='persistent'`` the chains are not fresh: each update takes m of the
``training.buffer_size`` chains of a replay buffer (``core/replay.py``), restarts each from p_0
with probability ``training.reinit_prob``, runs the K steps and writes the end states back.
The buffer is the state's ``bank``: checkpointed, rolled back and split across devices like
the latent families' bank, and the samples written back are those whose statistics the guard
checks.

Keys of update t, ``k_t = keys.step_key(seed, t)``: chains ``fold_in(k_t, 0)`` (short run:
x_0 ``fold_in(., 0)`` and noise ``fold_in(., 1)``; persistent: noise ``fold_in(., 1)``), data
noise ``fold_in(k_t, 1)``, dynamic K ``fold_in(k_t, 2)``, the buffer's draw ``fold_in(k_t, 3)``.
The initial buffer draws from ``fold_in(init key, 1)``.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import optax

from ebm_jax.core import flow, interpolation, replay, sampler
from ebm_jax.families import base
from ebm_jax.families import update as update_lib
from ebm_jax.models import input_grad as input_grad_lib
from ebm_jax.models import nets
from ebm_jax.runtime import parallel


CHAINS = ("short_run", "persistent")


class EBM(base.Family):
    name = "ebm"
    capabilities = frozenset({base.ENERGY, base.FLOW, base.SNAPSHOTS, base.INTERPOLATION,
                              base.RECONSTRUCTION})
    guard_spec = base.GuardSpec(
        finite=("loss", "energy_gap", "grad_norm_params", "grad_norm_x", "param_norm",
                "samples_mean", "samples_std"),
        bounds=(("energy_gap", "max_energy_gap"), ("grad_norm_params", "max_grad_norm")),
        growth=("energy_gap",),
        collapse="samples_chain_std")
    progress_fields = {"gap": "energy_gap", "r_t": "grad_norm_x", "std": "samples_std"}

    def __init__(self, config, data_shape: Sequence[int]):
        super().__init__(config, data_shape)
        self.model = nets.build_model(config.model, self.data_shape)
        if len(self.data_shape) == 3:
            # Images lie in [-1, 1], so samples beyond it are the chains running off; toy
            # data (the 1-D mixture's modes at +-1.5) need not.
            self.guard_spec = dataclasses.replace(
                self.guard_spec,
                bounds=self.guard_spec.bounds + (("samples_saturation", "max_saturation"),))
        sampler.method_of(config.sampling)
        chains = config.training.get("chains", "short_run")
        if chains not in CHAINS:
            raise ValueError(f"training.chains={chains!r}: choose {' or '.join(CHAINS)}")
        self.persistent = chains == "persistent"
        if self.persistent and not 0 <= float(config.training.reinit_prob) <= 1:
            raise ValueError(f"training.reinit_prob={config.training.reinit_prob}: it must lie "
                             "in [0, 1]")
        if self.persistent and int(config.training.buffer_size) < int(config.training.batch_size):
            raise ValueError(f"training.buffer_size={config.training.buffer_size} is smaller "
                             f"than training.batch_size={config.training.batch_size}")

    def state_meta(self, num_examples: int, mesh) -> dict:
        """The replay buffer's rows (persistent chains): ``training.buffer_size`` rounded up to
        split across devices."""
        return base.bank_meta(int(self.config.training.buffer_size), mesh) if self.persistent \
            else {}

    def init_state(self, key, tx, meta=None) -> base.TrainState:
        """Params from ``key`` (as for short-run chains); a persistent run's buffer of
        x_0 ~ p_0 from ``fold_in(key, 1)``."""
        state = super().init_state(key, tx, meta)
        if not self.persistent:
            return state
        prior = sampler.sampling_kwargs(self.config.sampling)["prior"]
        return state.replace(bank=replay.init(jax.random.fold_in(key, 1),
                                              int((meta or {})["bank_size"]), self.data_shape,
                                              prior))

    def state_shardings(self, mesh, meta=None) -> base.TrainState:
        rep = parallel.replicated(mesh)
        return base.TrainState(rep, rep, rep,
                               base.bank_sharding(mesh, meta) if self.persistent else None)

    @property
    def energy(self):
        """``energy(params, x_B...) -> f_B``, the negative energy."""
        return self.model.energy

    def init_params(self, key):
        return self.model.init(key)

    def input_grad(self, sampling_config=None):
        """The chains' gradient ``params -> (x -> grad_x sum_B f(x))`` under
        ``sampling.grad_impl`` (``models.input_grad``): the model's matrix-product form
        (``EnergyModel.input_grad``), or None for the sampler's own ``jax.grad`` of the energy
        (``autodiff``, which ``auto`` picks on a GPU)."""
        c = sampling_config or self.config.sampling
        return input_grad_lib.for_sampling(self.model.input_grad, c)

    @property
    def gap_energy(self):
        """The energy that the learning step's energy gap differentiates: ``energy`` in the form
        ``sampling.grad_impl`` picks for the chains (``EnergyModel.energy_with``; the ConvNet's
        matrix products on the CPU). The forms agree to float rounding; only the speed differs."""
        return self.model.energy_with(input_grad_lib.configured(self.config.sampling))

    def describe(self) -> str:
        return f"ebm ({self.config.model.get('name', 'conv')})"

    def make_update(self, tx: optax.GradientTransformation, mesh=None, meta=None):
        config = self.config
        energy, data_shape = self.energy, self.data_shape
        input_grad, gap_energy = self.input_grad(), self.gap_energy
        chain_kwargs = sampler.sampling_kwargs(config.sampling, grad_given=input_grad is not None)
        prior = chain_kwargs.pop("prior")
        chain_length = sampler.chain_length(config.sampling)
        persistent, reinit_prob = self.persistent, float(config.training.reinit_prob)

        def objective(state, batch, x, frozen, key, constrain):
            """The energy gap between the data x and the chains' samples y."""
            grad_fn = input_grad_lib.grad_fn_for(input_grad, frozen)
            run_kwargs = dict(constrain=constrain, grad_fn=grad_fn,
                              **chain_length(jax.random.fold_in(key, 2)), **chain_kwargs)
            chain_key, bank, extra = jax.random.fold_in(key, 0), state.bank, {}
            if persistent:
                start = replay.draw(jax.random.fold_in(key, 3), state.bank, x.shape[0], prior,
                                    reinit_prob)
                chains = sampler.run(lambda v: energy(frozen, v), constrain(start.x0),
                                     jax.random.fold_in(chain_key, 1), **run_kwargs)
                bank = replay.write(state.bank, start.index, chains.x)
                extra = dict(buffer_restarted=jnp.mean(start.restarted.astype(jnp.float32)))
            else:
                chains = sampler.short_run(lambda v: energy(frozen, v), chain_key,
                                           (x.shape[0],) + data_shape, prior=prior, **run_kwargs)
            if chains.accept_rate is not None:
                extra["accept_rate"] = chains.accept_rate
            y = jax.lax.stop_gradient(chains.x)

            def loss_fn(params):
                f_data, f_chain = gap_energy(params, x), gap_energy(params, y)
                loss = jnp.mean(f_chain) - jnp.mean(f_data)
                return loss, dict(energy_gap=-loss,  # mean f(data) - mean f(chains)
                                  f_data=jnp.mean(f_data), f_chains=jnp.mean(f_chain))

            return update_lib.Objective(loss_fn, dict(
                grad_norm_x=chains.grad_norm, num_langevin_steps=chains.num_steps,
                **sample_statistics(y), **extra), bank)

        return update_lib.make_update(self, objective, tx, mesh, meta)

    def make_sampler(self, config=None, *, mesh=None, snapshot_steps: Sequence[int] = ()):
        config = config or self.config
        return sampler.make_sampler(self.energy, config.sampling, self.data_shape,
                                    snapshot_steps=snapshot_steps,
                                    input_grad=self.input_grad(config.sampling),
                                    constrain=parallel.split_constraint(mesh))

    def interpolate(self, params, key, num_rows: int, rho_R, *, fixed_noise: bool = True,
                    config=None):
        """x_RB: the chains from z_rho = rho z1 + sqrt(1 - rho^2) z2, z1, z2 ~ p_0
        (``core.interpolation``), with the K, s and sigma of ``config`` and the chains' own
        input gradient (``input_grad``), as ``make_sampler`` runs them."""
        sampling_config = (config or self.config).sampling
        input_grad = self.input_grad(sampling_config)
        kw = sampler.sampling_kwargs(sampling_config, grad_given=input_grad is not None)
        prior = kw.pop("prior")
        return interpolation.interpolation_chains(
            lambda x: self.energy(params, x), key, (num_rows,) + self.data_shape, rho_R,
            sampler.num_steps(sampling_config), fixed_noise=fixed_noise, prior=prior,
            grad_fn=input_grad_lib.grad_fn_for(input_grad, params), **kw)[0]

    def make_reconstructor(self, config=None, *, num_iters: int = 200,
                           learning_rate: float = 0.05, snapshot_every: int | None = 25):
        """``reconstruct(params, x_B, key) -> base.Reconstruction``: z by gradient descent on
        ||x - M_theta(z)||^2 through the noise-free sampler (``flow.invert``, z_0 ~ p_0 with
        ``key``); ``stats_B`` holds ``at_boundary`` (coordinates of z on the prior's box).
        The flow's gradient is the chains' own (``input_grad``), as in ``--mode=bpd``."""
        sampling_config = (config or self.config).sampling
        kw = flow.flow_kwargs(sampling_config)
        input_grad = self.input_grad(sampling_config)
        energy = self.energy

        def reconstruct(params, x_B, key):
            inv = flow.invert(lambda v: energy(params, v), x_B, key, num_iters=num_iters,
                              learning_rate=learning_rate, snapshot_every=snapshot_every,
                              grad_fn=input_grad_lib.grad_fn_for(input_grad, params), **kw)
            return base.Reconstruction(inv.x, inv.z, inv.snapshots, inv.snapshot_iters,
                                       {"at_boundary": inv.at_boundary_B})

        return jax.jit(reconstruct)


def sample_statistics(y) -> dict:
    """The health of a batch of samples: mean, std, the fraction beyond +-1 (over-saturation)
    and the std across chains (near 0 when every chain ends at the same point)."""
    return dict(samples_mean=jnp.mean(y), samples_std=jnp.std(y),
                samples_saturation=jnp.mean(jnp.abs(y) > 1.0),
                samples_chain_std=jnp.mean(jnp.std(y, axis=0)))

