"""The policy: load / save round trips, the forward pass on observation arrays, and
a closed loop through Env whose scores equal the command line's `spacer eval`."""

import json
import subprocess

import numpy as np
import pytest

import spacer
from spacer import wosac


def test_blob_round_trips_and_describes_itself(tmp_path):
    p = spacer.Policy.initial(seed=1)
    assert (p.num_actions, p.observation_len, p.num_parameters) == (200, 2984, 65289)
    assert (p.max_partners, p.max_road_segments, p.observation_radius) == (63, 200, 50.0)
    assert p.trained_steps == 0
    assert p.tokens.shape == (3, 200, 2, 3) and p.tokens.dtype == np.float32
    path = tmp_path / "p.spw"
    p.save(path)
    q = spacer.Policy.load(path)
    assert q.to_bytes() == p.to_bytes() == path.read_bytes()
    assert spacer.Policy.from_bytes(path.read_bytes()).to_bytes() == p.to_bytes()
    assert spacer.Policy.initial(seed=2).to_bytes() != p.to_bytes()
    with pytest.raises(FileNotFoundError, match="missing.spw"):
        spacer.Policy.load(tmp_path / "missing.spw")
    (tmp_path / "short.spw").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="short.spw.*not a usable policy"):
        spacer.Policy.load(tmp_path / "short.spw")
    with pytest.raises(ValueError, match="not a usable policy"):
        spacer.Policy.from_bytes(b"SPACERPL")


def test_forward_and_act_on_observation_arrays():
    scenes = spacer.load_scenes(synthetic=1, seed=2)
    p = spacer.Policy.initial(seed=1)
    env = spacer.Env(scenes, vocabulary=p)
    obs = env.reset(0)
    logits, values = p.forward(obs)
    assert logits.shape == (len(env), 200) and logits.dtype == np.float32
    assert values.shape == (len(env),) and values.dtype == np.float32
    assert np.isfinite(logits).all()
    tokens = p.act(obs)
    assert tokens.dtype == np.int64 and np.array_equal(tokens, logits.argmax(axis=1))
    # One observation, float64 input, a non-contiguous view: the same numbers.
    one_logits, one_value = p.forward(obs[3])
    assert np.array_equal(one_logits, logits[3]) and one_value == values[3]
    assert p.act(obs[3]) == tokens[3]
    assert np.array_equal(p.logits(obs.astype(np.float64)), logits)
    assert np.array_equal(p.logits(np.asfortranarray(obs)), logits)
    assert np.array_equal(p.logits(obs[::2]), logits[::2])
    # Sampling is seeded per row.
    s1 = p.act(obs, temperature=1.0, seed=7)
    assert np.array_equal(s1, p.act(obs, temperature=1.0, seed=7))
    assert not np.array_equal(s1, p.act(obs, temperature=1.0, seed=8))
    assert ((0 <= s1) & (s1 < 200)).all()
    top1 = p.act(obs, temperature=1.0, top_k=1, seed=3)
    assert np.array_equal(top1, tokens)
    with pytest.raises(ValueError, match=r"observations must be \[n, 2984\].*\(2, 10\)"):
        p.forward(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="temperature"):
        p.act(obs, temperature=-1.0)
    with pytest.raises(ValueError, match="float array"):
        p.forward("obs")


def test_closed_loop_through_env_equals_spacer_eval(data, spacer_bin, tmp_path):
    """The policy acting through Env from Python (argmax) gives the same rollouts and
    the same scores as `spacer eval --agents policy:FILE --temperature 0`."""
    blob = tmp_path / "policy.spw"
    policy = spacer.Policy.initial(seed=1)
    policy.save(blob)
    scene_file = data / "womd" / "637f20cafde22ff8.tfrecord"
    (scene,) = spacer.load_scenes(scene_file)
    # `spacer eval`'s setup: every controllable object (up to 1024), collisions ignored.
    env = spacer.Env([scene], worlds_per_scene=2, max_controlled=1024, vocabulary=policy)
    obs = env.reset(0)
    while not env.done:
        obs, *_ = env.step(policy.act(obs))
    ours = env.score("2025")[0].to_dict()
    (tmp_path / "py.binproto").write_bytes(env.submission())
    out = subprocess.run(
        [
            str(spacer_bin), "eval", "--agents", f"policy:{blob}", "--temperature", "0",
            "--scenes", str(scene_file), "--rollouts", "2", "--config", "2025",
            "--json", str(tmp_path / "cli.json"), "--out", str(tmp_path / "cli.binproto"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    cli = json.loads((tmp_path / "cli.json").read_text())["agents"][0]["scores"]["scenes"][0]
    assert cli["SimAgentMetrics"] == ours["SimAgentMetrics"]
    assert cli["SimAgentsBucketedMetrics"] == ours["SimAgentsBucketedMetrics"]
    (a,) = wosac.read_submission(tmp_path / "py.binproto")
    (b,) = wosac.read_submission(tmp_path / "cli.binproto")
    for f in ("object_ids", "x", "y", "z", "heading"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
