"""Benchmarks of the Python package (run with the installed wheel, release build):

    python python/benchmarks/bench.py [--data ../shared/data] [--repeats 20]

1. ``spacer.wosac.score``: one scene x 32 rollouts, from arrays and from a submission
   file (target: <= 0.1 s). The shipped WOMD scene 637f20cafde22ff8 with its
   constant-velocity submission when the data is there, else a synthetic scene with
   32 noisy copies of its logged future.
2. ``spacer.wosac.score_many``: 8 such scenes on 1 thread, then on every core (target:
   scales with the cores).
3. ``spacer.Env.step`` from Python with random tokens drawn by numpy every step,
   observations included (target: >= 300,000 agent-steps/s on 2 cores): 10 Hz steps
   of controlled agents per second of wall clock, each ``step`` being two.

Prints one line per measurement (best and median of the repeats) and the machine's
core count and load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

import spacer
from spacer import wosac


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def timed(fn, repeats):
    """Best and median wall-clock seconds of ``repeats`` calls, and the CPU seconds
    per call (all threads) over all of them."""
    out = []
    c = cpu_seconds()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out), statistics.median(out), (cpu_seconds() - c) / repeats


def noisy_rollouts(scene, n=32, seed=0):
    """``n`` copies of the logged future with 0.5 m / 0.05 rad Gaussian noise."""
    log = wosac.logged_rollouts(scene)
    rng = np.random.default_rng(seed)
    shape = (n,) + log.x.shape[1:]
    noise = lambda s: rng.normal(0.0, s, shape).astype(np.float32)  # noqa: E731
    return wosac.Rollouts(
        log.object_ids,
        np.repeat(log.x, n, 0) + noise(0.5),
        np.repeat(log.y, n, 0) + noise(0.5),
        np.repeat(log.z, n, 0),
        np.repeat(log.heading, n, 0) + noise(0.05),
        scenario_id=log.scenario_id,
    )


def main():
    ap = argparse.ArgumentParser()
    here = Path(__file__).resolve().parent
    ap.add_argument("--data", type=Path, default=here.parents[2] / "shared" / "data")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--worlds", type=int, default=32, help="Env worlds (synthetic scenes)")
    ap.add_argument("--episodes", type=int, default=5)
    args = ap.parse_args()
    cores = os.cpu_count()
    print(f"spacer {spacer.__version__}, {cores} cores, load average {os.getloadavg()}")

    # 1. One scene x 32 rollouts.
    sub = args.data / "wosac" / "637f20cafde22ff8_constvel_submission.binproto"
    if sub.is_file():
        (scene,) = spacer.load_scenes(args.data / "womd" / "637f20cafde22ff8.tfrecord")
        (arrays,) = wosac.read_submission(sub)
        origin = "WOMD 637f20cafde22ff8, constant-velocity submission"
    else:
        (scene,) = spacer.load_scenes(synthetic=1, seed=1)
        arrays, sub = noisy_rollouts(scene), None
        origin = f"synthetic {scene.id}, noisy log (no shipped data at {args.data})"
    r, o = arrays.x.shape[:2]
    wosac.score(scene, arrays)  # warm up (thread pool, page faults)
    best, med, cpu = timed(lambda: wosac.score(scene, arrays), args.repeats)
    print(
        f"wosac.score, arrays [{r}, {o}, 80], {origin}: best {best * 1e3:.1f} ms, "
        f"median {med * 1e3:.1f} ms, {cpu * 1e3:.0f} CPU-ms per call (target <= 100 ms)"
    )
    if sub is not None:
        best, med, cpu = timed(lambda: wosac.score(scene, sub), args.repeats)
        print(
            f"wosac.score, submission file: best {best * 1e3:.1f} ms, median {med * 1e3:.1f} ms, "
            f"{cpu * 1e3:.0f} CPU-ms per call"
        )

    # 2. score_many over 8 scenes (8 copies of the scene above), 1 thread vs all cores.
    scenes, rolls = [scene] * 8, [arrays] * 8
    reps = max(2, args.repeats // 5)
    one, _, cpu1 = timed(lambda: wosac.score_many(scenes, rolls, threads=1), reps)
    allc, _, cpun = timed(lambda: wosac.score_many(scenes, rolls), reps)
    print(
        f"wosac.score_many, 8 scenes x {r} rollouts: 1 thread {one:.3f} s ({cpu1:.2f} CPU-s), "
        f"{cores} threads {allc:.3f} s ({cpun:.2f} CPU-s), speed-up {one / allc:.2f}x"
    )

    # 3. Env.step with random tokens.
    world_scenes = spacer.load_scenes(synthetic=args.worlds, seed=3)
    env = spacer.Env(world_scenes)
    rows = len(env)
    rng = np.random.default_rng(0)
    rates = []
    c = cpu_seconds()
    for e in range(args.episodes):
        env.reset(e)
        t = time.perf_counter()
        steps = 0
        while not env.done:
            env.step(rng.integers(0, env.num_actions, rows))
            steps += 1
        dt = time.perf_counter() - t
        rates.append(rows * 2 * steps / dt)
    cpu = cpu_seconds() - c
    print(
        f"Env.step, {args.worlds} synthetic worlds, {rows} agents, random tokens, observations "
        f"[{rows}, {env.observation_len}] every step: best {max(rates):,.0f}, median "
        f"{statistics.median(rates):,.0f} agent-steps/s (target >= 300,000); "
        f"{rows * 80 * args.episodes / cpu:,.0f} agent-steps per CPU-second"
    )


if __name__ == "__main__":
    main()
