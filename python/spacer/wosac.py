"""The Waymo Open Sim Agents Challenge (WOSAC) metrics.

The official definitions (waymo-open-dataset's ``sim_agents_metrics``), computed in
Rust: every shipped golden case matches the official values to 1e-4 under the 2025
and 2024 configs, which are built in (``config="2025"`` or ``"2024"``; a path to a
text-format ``SimAgentMetricsConfig`` also works).

Rollouts come in either form:

- a **submission**: a ``SimAgentsChallengeSubmission`` (or bare ``ScenarioRollouts``)
  ``.binproto`` path, its ``bytes``, or a list of the shard paths of one submission
  (the official format ships many files);
- **arrays**: :class:`Rollouts` (or a plain tuple ``(object_ids, x, y, z, heading)``,
  or a mapping with those keys): ``object_ids`` int ``[n_objects]``; ``x``, ``y``,
  ``z`` (m) and ``heading`` (rad) float ``[n_rollouts, n_objects, 80]``, the 80
  simulated steps after the current one. Contiguous float32 arrays are read in place.

The objects must be exactly those valid at the scene's current step (the
submission's rule); a missing or extra object, a NaN or a wrong shape is a
``ValueError`` that says which.
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _spacer
from ._spacer import BucketedScores, Scene, Scores

__all__ = [
    "BucketedScores",
    "CONFIGS",
    "Rollouts",
    "Scores",
    "logged_rollouts",
    "read_submission",
    "score",
    "score_many",
    "submission_bytes",
    "write_submission",
]

#: The configs built in.
CONFIGS = ("2024", "2025")

PathLike = Union[str, "os.PathLike[str]"]


class Rollouts(NamedTuple):
    """One scene's rollouts as arrays (a plain 5-tuple in this order works too)."""

    #: Object ids, int ``[n_objects]``.
    object_ids: np.ndarray
    #: Centre x (m), float ``[n_rollouts, n_objects, n_steps]``.
    x: np.ndarray
    #: Centre y (m), same shape.
    y: np.ndarray
    #: Centre z (m), same shape.
    z: np.ndarray
    #: Heading (rad), same shape.
    heading: np.ndarray
    #: The scene's id, when known.
    scenario_id: Optional[str] = None

    @property
    def num_rollouts(self) -> int:
        return int(np.shape(self.x)[0])


RolloutsLike = Union[Rollouts, Sequence[Any], Mapping[str, Any], bytes, PathLike, Sequence[PathLike]]


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _submission(rollouts: Any):
    """``("bytes", b)``, ``("files", [paths])`` or ``None`` for arrays."""
    if isinstance(rollouts, (bytes, bytearray, memoryview)):
        return "bytes", bytes(rollouts)
    if _is_path(rollouts):
        return "files", [rollouts]
    if (
        isinstance(rollouts, (list, tuple))
        and len(rollouts) > 0
        and not isinstance(rollouts, Rollouts)
        and all(_is_path(r) for r in rollouts)
    ):
        return "files", list(rollouts)
    return None


def _arrays(r: Any, which: str = "rollouts"):
    """``(object_ids, x, y, z, heading)`` from :class:`Rollouts`, a tuple or a mapping."""
    if isinstance(r, Mapping):
        ids = r.get("object_ids", r.get("object_id"))
        try:
            return (ids, r["x"], r["y"], r["z"], r["heading"])
        except KeyError as e:
            raise ValueError(
                f"{which}: a mapping of arrays needs the keys object_ids, x, y, z, heading "
                f"(missing {e})"
            ) from None
    if isinstance(r, (tuple, list)) and len(r) in (5, 6):
        return tuple(r[:5])
    raise TypeError(
        f"{which}: expected a submission (path, bytes, list of shard paths) or arrays "
        f"(spacer.wosac.Rollouts, a tuple (object_ids, x, y, z, heading) or a mapping "
        f"with those keys), got {type(r).__name__}"
    )


def _scene_list(scenarios: Any) -> List[Scene]:
    if isinstance(scenarios, Scene):
        return [scenarios]
    if _is_path(scenarios):
        from . import load_scenes

        return load_scenes(scenarios)
    out: List[Scene] = []
    for s in scenarios:
        out.extend(_scene_list(s))
    return out


def _one_scene(scenario: Any) -> Scene:
    scenes = _scene_list(scenario)
    if len(scenes) != 1:
        raise ValueError(
            f"score() takes one scene; {scenario!r} holds {len(scenes)} "
            f"(use score_many, or pick one from spacer.load_scenes)"
        )
    return scenes[0]


def score(scenario: Union[Scene, PathLike], rollouts: RolloutsLike, config: str = "2025") -> Scores:
    """Scores one scene's rollouts (a submission or arrays, see the module docs).

    ``scenario``: a :class:`spacer.Scene` or the path of a file holding one scene.
    Returns :class:`Scores`: every ``SimAgentMetrics`` field by its proto name
    (``scores.metametric``, ``scores["min_average_displacement_error"]``) and the
    buckets (``scores.bucketed.realism_meta_metric``); ``scores.to_dict()`` gives the
    JSON layout of ``spacer metrics --json``.
    """
    scene = _one_scene(scenario)
    sub = _submission(rollouts)
    if sub is not None:
        kind, value = sub
        if kind == "bytes":
            return _spacer.score_submission_bytes([scene], value, config)[0]
        return _spacer.score_submission_files([scene], value, config)[0]
    return _spacer.score_arrays([scene], [_arrays(rollouts)], config)[0]


def score_many(
    scenarios: Union[Sequence[Scene], PathLike, Sequence[PathLike]],
    rollouts: Union[RolloutsLike, Sequence[Any], Mapping[str, Any]],
    config: str = "2025",
    threads: Optional[int] = None,
) -> List[Scores]:
    """Scores many scenes in parallel (all cores, or ``threads``).

    ``scenarios``: scenes, or paths to load them from. ``rollouts``: one submission
    covering every scene (path, bytes, shard paths), or arrays per scene: a sequence
    in scene order, or a mapping from scenario id to arrays. Returns one
    :class:`Scores` per scene, in order.
    """
    scenes = _scene_list(scenarios)
    sub = _submission(rollouts)
    if sub is not None:
        kind, value = sub
        if kind == "bytes":
            return _spacer.score_submission_bytes(scenes, value, config, threads)
        return _spacer.score_submission_files(scenes, value, config, threads)
    if isinstance(rollouts, Mapping) and {"x", "y"} <= set(rollouts):
        sets: List[Any] = [rollouts]
    elif isinstance(rollouts, Mapping):
        try:
            sets = [rollouts[s.id] for s in scenes]
        except KeyError as e:
            raise ValueError(f"no rollout arrays for scene {e}") from None
    else:
        sets = list(rollouts)
    arrays = [_arrays(r, f"rollouts[{i}]") for i, r in enumerate(sets)]
    return _spacer.score_arrays(scenes, arrays, config, threads)


def read_submission(source: Union[bytes, PathLike, Sequence[PathLike]]) -> List[Rollouts]:
    """A submission (a file, its shards, or its bytes) as :class:`Rollouts` per scene
    (every rollout of a scene must list the same objects in the same order)."""
    if isinstance(source, (bytearray, memoryview)):
        source = bytes(source)
    return [
        Rollouts(ids, x, y, z, h, scenario_id=sid)
        for (sid, ids, x, y, z, h) in _spacer.read_submission(source)
    ]


def submission_bytes(
    rollouts: Sequence[Rollouts], method_name: Optional[str] = None
) -> bytes:
    """The ``.binproto`` bytes of a ``SimAgentsChallengeSubmission`` holding each
    scene's :class:`Rollouts` (each needs its ``scenario_id``)."""
    items = []
    for i, r in enumerate(rollouts):
        sid = getattr(r, "scenario_id", None)
        if not sid:
            raise ValueError(f"rollouts[{i}] has no scenario_id")
        ids, x, y, z, h = _arrays(r, f"rollouts[{i}]")
        items.append((sid, (ids, x, y, z, h)))
    return _spacer.submission_bytes(items, method_name)


def write_submission(
    path: PathLike, rollouts: Sequence[Rollouts], method_name: Optional[str] = None
) -> None:
    """Writes :func:`submission_bytes` to ``path``."""
    data = submission_bytes(rollouts, method_name)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def logged_rollouts(scene: Scene) -> Rollouts:
    """One rollout equal to the logged future of every object valid at the current
    step (the official ``scenario_to_joint_scene``): its score is how the log scores
    against itself."""
    sid, ids, x, y, z, h = _spacer.logged_rollouts(scene)
    return Rollouts(ids, x, y, z, h, scenario_id=sid)
