"""spacer: SPACeR sim agents from Python.

- :func:`load_scenes` reads recorded driving (WOMD ``Scenario`` TFRecords, GPUDrive
  JSON, INTERACTION CSV + Lanelet2 maps, spacer scene caches) or generates synthetic
  scenes; every :class:`Scene` exposes its trajectories, validity, box sizes, types,
  ids, tracks to predict, map polylines and signals as numpy arrays.
- :mod:`spacer.wosac` scores sim-agent rollouts with the official Waymo Open Sim
  Agents Challenge metrics (2024 and 2025 configs built in), from a submission or
  from arrays.
- :class:`Env` is the batched driving simulator as a vector environment: tokens in;
  observations, the trainer's rewards, done flags and events out; the rollouts as a
  submission at the end. :mod:`spacer.gym` adapts it to ``gymnasium``'s vector API.
- :class:`Policy` loads a weights blob and runs the policy's forward pass (the same
  function the simulator, the C ABI and the firmware run) on observation arrays.

The work runs in Rust, in parallel, without holding the GIL. Errors are Python
exceptions that say what is wrong: ``FileNotFoundError`` / ``OSError`` for files,
``ValueError`` for content, shapes or values (naming the file, record, field, object
or row), ``TypeError`` for arguments of the wrong kind, ``RuntimeError`` for calls out
of order.

Observation layout (``OBSERVATION_LEN`` = 2984 floats per agent, GPUDrive's, in the
agent's frame: x forward, y left; empty slots are zero):

======== ============================================================================
block    features (normalisation)
======== ============================================================================
ego      speed/100, length/30, width/15, goal x/1000, goal y/1000, collided
partner  (63 nearest within 50 m, nearest first) speed/100, x/1000, y/1000,
         heading/(2 pi), length/30, width/15
road     (200 nearest segments within 50 m) x/1000, y/1000, half-length/100,
         half-width/100, height/100, heading/(2 pi), one-hot of ``ROAD_KINDS``
======== ============================================================================

:func:`split_observation` cuts observations into these blocks without copying.
"""

from __future__ import annotations

import os
import warnings
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _spacer
from ._spacer import HOLD, LOG, Env, Policy, Scene, __version__

PathLike = Union[str, "os.PathLike[str]"]

#: Object types by WOMD value (``Scene.object_types``).
OBJECT_TYPES = ("unset", "vehicle", "pedestrian", "cyclist", "other")
#: Vocabulary kinds by index (``Env.row_kind``).
AGENT_KINDS = ("vehicle", "pedestrian", "cyclist")
#: Road kinds of the observation's one-hot block, in encoding order.
ROAD_KINDS = ("none", "road_edge", "road_line", "lane", "crosswalk", "speed_bump", "stop_sign")
#: Features of the ego block.
EGO_FEATURES = 6
#: Features per partner slot.
PARTNER_FEATURES = 6
#: Features per road slot.
ROAD_FEATURES = 13
#: Partner slots of the default layout.
MAX_PARTNERS = 63
#: Road slots of the default layout.
MAX_ROAD_SEGMENTS = 200
#: Floats per observation with the default layout.
OBSERVATION_LEN = EGO_FEATURES + MAX_PARTNERS * PARTNER_FEATURES + MAX_ROAD_SEGMENTS * ROAD_FEATURES
#: ``Env.step`` event bits.
EVENT_COLLISION = 1
EVENT_OFFROAD = 2
EVENT_GOAL = 4

from . import wosac  # noqa: E402  (needs the names above)

__all__ = [
    "AGENT_KINDS",
    "EGO_FEATURES",
    "EVENT_COLLISION",
    "EVENT_GOAL",
    "EVENT_OFFROAD",
    "Env",
    "HOLD",
    "LOG",
    "MAX_PARTNERS",
    "MAX_ROAD_SEGMENTS",
    "OBJECT_TYPES",
    "OBSERVATION_LEN",
    "PARTNER_FEATURES",
    "Policy",
    "ROAD_FEATURES",
    "ROAD_KINDS",
    "Scene",
    "__version__",
    "load_scenes",
    "save_scenes",
    "split_observation",
    "wosac",
]


def load_scenes(
    paths: Union[PathLike, Sequence[PathLike], None] = None,
    *,
    synthetic: int = 0,
    seed: int = 0,
    skip_bad: bool = False,
    map: Optional[PathLike] = None,
) -> List[Scene]:
    """Reads scenes from files or directories, and/or generates synthetic ones.

    ``paths``: one path or several; a file of any supported format (chosen by name,
    then by content: ``*.tfrecord*`` WOMD, ``*.json`` GPUDrive, ``*.csv`` INTERACTION
    with its Lanelet2 ``.osm`` beside it or given as ``map``, ``*.spc`` scene cache),
    or a directory (every scene file directly in it). An INTERACTION recording becomes
    one scene per 9.1 s window, one every second.

    ``synthetic``: that many generated scenes (road networks with human-like traffic,
    seeded by ``seed``: the same seed gives the same scenes), after the loaded ones.

    Every scene is validated (91 steps, no NaN, positive boxes, unique ids...). A bad
    file or scene raises ``ValueError`` naming the file, record and field; with
    ``skip_bad=True`` it is skipped with a ``UserWarning`` instead.
    """
    scenes, skipped = _spacer.load_scenes(
        paths, synthetic=synthetic, seed=seed, skip_bad=skip_bad, map=map
    )
    for w in skipped:
        warnings.warn(f"skipped: {w}", stacklevel=2)
    return scenes


def save_scenes(scenes: Iterable[Scene], path: PathLike) -> int:
    """Writes scenes to a scene cache (``.spc``, what training reads), atomically.

    Returns how many were written.
    """
    return _spacer.save_scenes(list(scenes), path)


def split_observation(
    obs: np.ndarray,
    max_partners: int = MAX_PARTNERS,
    max_road_segments: int = MAX_ROAD_SEGMENTS,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the ego ``[..., 6]``, partner ``[..., max_partners, 6]`` and road
    ``[..., max_road_segments, 13]`` blocks of observations ``[..., obs_len]``
    (no copy when ``obs`` is contiguous)."""
    obs = np.asarray(obs)
    want = EGO_FEATURES + max_partners * PARTNER_FEATURES + max_road_segments * ROAD_FEATURES
    if obs.shape[-1] != want:
        raise ValueError(
            f"observations of {obs.shape[-1]} floats, the layout has {want} "
            f"({max_partners} partners, {max_road_segments} road segments)"
        )
    lead = obs.shape[:-1]
    p0 = EGO_FEATURES
    r0 = p0 + max_partners * PARTNER_FEATURES
    ego = obs[..., :p0]
    partners = obs[..., p0:r0].reshape(*lead, max_partners, PARTNER_FEATURES)
    roads = obs[..., r0:].reshape(*lead, max_road_segments, ROAD_FEATURES)
    return ego, partners, roads
