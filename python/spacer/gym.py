"""A ``gymnasium`` vector-env adapter for :class:`spacer.Env` (needs ``gymnasium>=1.0``:
``pip install gymnasium``).

Each row of the environment (one controlled agent of one world) is one
sub-environment: ``single_observation_space`` is ``Box(-inf, inf, (obs_len,),
float32)`` and ``single_action_space`` is ``Discrete(num_actions)`` (the token).

Episodes end together: every world runs its 40 decisions. Conventions:

- An agent that finishes early (stopped or removed by its goal or a collision) is
  ``terminated`` at that decision; afterwards, until the batch ends, its row reports
  reward 0, ``terminated=False`` and ``infos["acting"][row] == False`` (its action is
  ignored): mask those rows out of a loss.
- At the last decision every acting row is ``terminated`` (the end is terminal, as in
  GPUDrive and spacer's trainer; nothing is ``truncated``), and the batch resets at
  once with the next seed (``AutoresetMode.SAME_STEP``): the returned observations
  are the new episode's first, the last ones are in ``infos["final_obs"]``.
- ``infos`` always holds ``acting`` (bool [rows]) and ``events`` (uint8 [rows]:
  1 collision, 2 off-road, 4 goal reached).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

try:
    import gymnasium
    from gymnasium.vector import AutoresetMode, VectorEnv
except ImportError as e:  # pragma: no cover - exercised only without gymnasium
    raise ImportError("spacer.gym needs gymnasium>=1.0: pip install gymnasium") from e

from . import Env

__all__ = ["SpacerVectorEnv"]


class SpacerVectorEnv(VectorEnv):
    """``gymnasium.vector.VectorEnv`` over a :class:`spacer.Env` (see the module docs).

    ``copy=False`` returns the environment's own observation buffer (overwritten by
    the next step) instead of a copy.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env: Env, *, seed: int = 0, copy: bool = True) -> None:
        self.env = env
        self.copy = copy
        self.num_envs = len(env)
        self._seed = seed
        self.single_observation_space = gymnasium.spaces.Box(
            -np.inf, np.inf, (env.observation_len,), np.float32
        )
        self.single_action_space = gymnasium.spaces.Discrete(env.num_actions)
        self.observation_space = gymnasium.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gymnasium.vector.utils.batch_space(
            self.single_action_space, self.num_envs
        )

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return obs.copy() if self.copy else obs

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
    ) -> Tuple[np.ndarray, Dict[str, Any]]:
        if seed is not None:
            self._seed = seed
        obs = self.env.reset(self._seed)
        return self._obs(obs), {"acting": self.env.acting}

    def step(
        self, actions: Any
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        acting = self.env.acting
        obs, rewards, dones, events = self.env.step(np.asarray(actions, dtype=np.int64))
        terminated = dones & acting
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: Dict[str, Any] = {"acting": self.env.acting, "events": events}
        if self.env.done:
            infos["final_obs"] = obs.copy()
            self._seed += 1
            obs = self.env.reset(self._seed)
            infos["acting"] = self.env.acting
        return self._obs(obs), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        pass
