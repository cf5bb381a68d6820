"""The simulator as a vector environment: an episode, shapes and dtypes, rewards
against events, the behaviours, determinism, the submission, errors, gymnasium."""

import numpy as np
import pytest

import spacer
from spacer import wosac


@pytest.fixture(scope="module")
def scenes():
    return spacer.load_scenes(synthetic=3, seed=11)


def test_an_episode_with_random_tokens(scenes):
    env = spacer.Env(scenes, worlds_per_scene=2)
    rows = len(env)
    assert rows == env.num_rows > 0 and env.num_worlds == 6
    assert env.observation_len == spacer.OBSERVATION_LEN and env.num_actions == 200
    assert env.done and env.decisions == 40
    for a, dtype in (
        (env.row_world, np.int64),
        (env.row_scene, np.int64),
        (env.row_track, np.int64),
        (env.row_object_id, np.int64),
        (env.row_kind, np.int8),
    ):
        assert a.shape == (rows,) and a.dtype == dtype
    assert env.row_world.max() == 5 and env.row_scene.max() == 2
    assert set(env.row_kind.tolist()) <= {0, 1, 2}
    # Each row's object id is its track's id in its scene.
    for r in (0, rows // 2, rows - 1):
        scene = env.scenes[env.row_scene[r]]
        assert scene.object_ids[env.row_track[r]] == env.row_object_id[r]
    obs = env.reset(seed=3)
    assert obs.shape == (rows, spacer.OBSERVATION_LEN) and obs.dtype == np.float32
    assert obs is env.observations and obs.flags.c_contiguous
    assert np.isfinite(obs).all() and (np.abs(obs[:, 0]) > 0).any()
    first = obs.copy()
    rng = np.random.default_rng(0)
    returns = np.zeros(rows, np.float32)
    seen_events = 0
    for d in range(env.decisions):
        assert not env.done and env.decision == d
        tokens = rng.integers(0, env.num_actions, rows)
        obs2, rewards, dones, events = env.step(tokens)
        assert obs2 is obs
        assert rewards.shape == (rows,) and rewards.dtype == np.float32
        assert dones.shape == (rows,) and dones.dtype == np.bool_
        assert events.shape == (rows,) and events.dtype == np.uint8
        # The reward is the trainer's: collision and off-road terms for the decision's
        # events (the goal reward is paid once, at the first goal event).
        expect = (
            -0.75 * ((events & spacer.EVENT_COLLISION) > 0)
            - 0.75 * ((events & spacer.EVENT_OFFROAD) > 0)
        ).astype(np.float32)
        paid_goal = rewards - expect
        assert np.all((np.abs(paid_goal) < 1e-6) | ((np.abs(paid_goal - 1) < 1e-6) & ((events & 4) > 0)))
        assert dones.all() == (d == env.decisions - 1)
        returns += rewards
        seen_events |= int(np.bitwise_or.reduce(events))
    assert env.done
    assert seen_events & (spacer.EVENT_COLLISION | spacer.EVENT_OFFROAD)
    assert (returns < 0).any()
    # Same seed, same first observations; the episode's rollouts score.
    assert np.array_equal(env.reset(seed=3), first)
    with pytest.raises(RuntimeError, match="last decision"):
        env.submission()


def test_the_rollouts_are_a_submission_that_scores_like_env_score(scenes):
    env = spacer.Env(scenes[:2], worlds_per_scene=3, max_controlled=8)
    assert len(env) <= 2 * 3 * 8
    env.reset(1)
    while not env.done:
        env.step(np.full(len(env), spacer.LOG))
    sub = env.submission(method_name="log replay")
    direct = env.score("2025")
    assert [s.scenario_id for s in direct] == [s.id for s in scenes[:2]]
    via = wosac.score_many(scenes[:2], sub)
    assert [s.to_dict() for s in via] == [s.to_dict() for s in direct]
    per_scene = wosac.read_submission(sub)
    assert [r.num_rollouts for r in per_scene] == [3, 3]
    # Log-following agents replay the log: far better than random motion.
    assert all(s.metametric > 0.6 for s in direct), direct


def test_collisions_remove_agents_and_hold_stands_still(scenes):
    env = spacer.Env(scenes, collision="remove", goal="remove", rewards={"collision": -2.0})
    assert env.rewards == {"goal": 1.0, "collision": -2.0, "offroad": -0.75}
    obs = env.reset(0)
    rng = np.random.default_rng(1)
    ended = np.zeros(len(env), bool)
    while not env.done:
        acting = env.acting.copy()
        assert not (acting & ended).any(), "an agent acted after its episode ended"
        obs, rewards, dones, events = env.step(rng.integers(0, env.num_actions, len(env)))
        # Rows that did not act earn nothing and stay done.
        assert (rewards[~acting] == 0).all() and dones[~acting].all()
        # Removed agents observe zeros.
        gone = dones & ((events & (spacer.EVENT_COLLISION | spacer.EVENT_OFFROAD)) > 0)
        assert (obs[gone] == 0).all()
        hit = acting & ((events & spacer.EVENT_COLLISION) > 0)
        assert (rewards[hit] <= -2.0).all()
        ended |= dones
    assert ended.all()
    # Standing still: no movement, so the ego speed stays zero after the first step.
    env = spacer.Env(scenes[:1])
    env.reset(0)
    obs, *_ = env.step(np.full(len(env), spacer.HOLD))
    obs, *_ = env.step(np.full(len(env), spacer.HOLD))
    assert (obs[:, 0] == 0).all()


def test_a_train_config_sets_the_environment(scenes):
    # paper (GPUDrive's episode ends): collisions and goals remove agents, so some rows
    # stop acting; cpu (the evaluation's conditions): every agent acts to the end.
    for config, all_acting in (("paper", False), ("cpu", True)):
        env = spacer.Env(scenes[:1], train_config=config)
        assert env.rewards == {"goal": 1.0, "collision": -0.75, "offroad": -0.75}
        env.reset(0)
        rng = np.random.default_rng(0)
        for _ in range(10):
            env.step(rng.integers(0, 200, len(env)))
        assert env.acting.all() == all_acting, config
    with pytest.raises(ValueError, match="neither a preset"):
        spacer.Env(scenes[:1], train_config="nope")


def test_bad_arguments_raise(scenes):
    env = spacer.Env(scenes[:1])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(len(env), np.int64))
    env.reset(0)
    with pytest.raises(ValueError, match="tokens has 3 entries"):
        env.step([0, 1, 2])
    bad = np.zeros(len(env), np.int64)
    bad[2] = 200
    with pytest.raises(ValueError, match="token 200 of row 2"):
        env.step(bad)
    bad[2] = -3
    with pytest.raises(ValueError, match="token -3 of row 2"):
        env.step(bad)
    for kwargs, match in (
        ({"collision": "bounce"}, "collision must be"),
        ({"goal": "teleport"}, "goal must be"),
        ({"control": "some"}, "control must be"),
        ({"rewards": {"speed": 1.0}}, "unknown reward term"),
        ({"rewards": {"goal": float("nan")}}, "finite"),
        ({"goal_dropout": 2.0}, "goal_dropout"),
        ({"box_scale": 0.0}, "box_scale"),
        ({"worlds_per_scene": 0}, "at least one"),
    ):
        with pytest.raises(ValueError, match=match):
            spacer.Env(scenes[:1], **kwargs)
    with pytest.raises(ValueError, match="at least one"):
        spacer.Env([])
    with pytest.raises(TypeError, match="vocabulary"):
        spacer.Env(scenes[:1], vocabulary=3)
    with pytest.raises(FileNotFoundError):
        spacer.Env(scenes[:1], vocabulary="no/such/vocab.postcard")


def test_gymnasium_adapter(scenes, require):
    gym = require("gymnasium")
    from spacer.gym import SpacerVectorEnv

    venv = SpacerVectorEnv(spacer.Env(scenes[:2], collision="remove"), seed=5)
    assert isinstance(venv, gym.vector.VectorEnv)
    n = venv.num_envs
    assert venv.single_action_space.n == 200
    assert venv.observation_space.shape == (n, spacer.OBSERVATION_LEN)
    obs, infos = venv.reset(seed=5)
    assert obs.shape == (n, spacer.OBSERVATION_LEN) and infos["acting"].all()
    venv.action_space.seed(0)
    for d in range(40):
        obs, rewards, term, trunc, infos = venv.step(venv.action_space.sample())
        assert not trunc.any()
        if d < 39:
            assert "final_obs" not in infos
    # The last decision ended every acting agent and reset the batch with the next seed.
    assert "final_obs" in infos and infos["acting"].all()
    assert np.array_equal(obs, spacer.Env(scenes[:2], collision="remove").reset(6))
