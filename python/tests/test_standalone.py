"""The installed package works on its own: no ../shared, no repository, any cwd."""

import os
import subprocess
import sys
import textwrap


def test_import_and_score_without_the_repository(tmp_path):
    code = textwrap.dedent(
        """
        import numpy as np, spacer
        from spacer import wosac
        assert "site-packages" in spacer.__file__, spacer.__file__
        scenes = spacer.load_scenes(synthetic=2, seed=4)
        for config in ("2025", "2024"):
            s = wosac.score(scenes[0], wosac.logged_rollouts(scenes[0]), config)
            assert 0.5 < s.metametric <= 1.0, s
        env = spacer.Env(scenes, worlds_per_scene=2)
        env.reset(0)
        while not env.done:
            env.step(np.zeros(len(env), np.int64))
        assert len(env.score()) == 2
        p = spacer.Policy.initial()
        assert p.act(env.observations).shape == (len(env),)
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPACER_", "PYTHONPATH"))}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
