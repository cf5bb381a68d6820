"""Scenes: every reader, the synthetic generator, the arrays and their dtypes, errors."""

import numpy as np
import pytest

import spacer


def test_womd_scene_arrays_match_the_data_readme(womd_scene):
    s = womd_scene
    assert (s.id, s.source, s.current_step, s.num_steps) == ("637f20cafde22ff8", "womd", 10, 91)
    assert s.num_objects == 83
    assert s.object_ids.dtype == np.int64 and s.object_ids.shape == (83,)
    types = s.object_types
    assert types.dtype == np.int8
    assert [int((types == v).sum()) for v in (1, 2, 3)] == [70, 10, 3]
    assert s.trajectories.shape == (83, 91, 6) and s.trajectories.dtype == np.float32
    assert s.sizes.shape == (83, 91, 3) and s.sizes.dtype == np.float32
    assert s.valid.shape == (83, 91) and s.valid.dtype == np.bool_
    assert int(s.valid.sum()) == 4596
    assert s.sdc_index == 82
    assert sorted(s.tracks_to_predict.tolist()) == [42, 43, 72]
    assert s.evaluated_tracks.tolist() == [42, 43, 72, 82]
    assert len(s.map_ids) == len(s.map_kinds) == 301
    assert s.map_kinds.count("lane") == 199 and s.map_kinds.count("stop_sign") == 8
    n_points = s.map_points.shape[0]
    assert s.map_points.shape == (n_points, 3) and s.map_points.dtype == np.float32
    off = s.map_offsets
    assert off[0] == 0 and off[-1] == n_points and np.all(np.diff(off) >= 1)
    lines = [i for i, k in enumerate(s.map_kinds) if k in ("lane", "road_line", "road_edge")]
    assert sum(int(off[i + 1] - off[i]) for i in lines) == 19596
    polys = s.polylines
    assert len(polys) == 301
    assert np.array_equal(polys[5], s.map_points[off[5] : off[6]])
    assert s.signal_lanes.shape == (12,)
    assert s.signal_states.shape == (91, 12) and s.signal_states.dtype == np.int8
    assert s.signal_states.max() <= 8 and (s.signal_states > 0).any()
    assert s.signal_stop_points.shape == (12, 3)
    # Valid states carry finite values and positive boxes.
    v = s.valid
    assert np.isfinite(s.trajectories[v]).all()
    assert (s.sizes[v][:, :2] > 0).all()


def test_every_format_loads(data):
    gpu = spacer.load_scenes(data / "gpudrive" / "637f20cafde22ff8.json")
    assert gpu[0].id == "637f20cafde22ff8" and gpu[0].source == "gpudrive"
    inter = spacer.load_scenes(data / "interaction" / "DR_USA_Intersection_EP0_vehicle_tracks_000.csv")
    assert len(inter) > 100 and all(s.source == "interaction" for s in inter)
    both = spacer.load_scenes([data / "womd", str(data / "gpudrive" / "tl_tfrecord-00000-of-00150_2a173b334be3d32c.json")])
    assert len(both) == 3


def test_synthetic_scenes_are_seeded_and_round_trip_through_a_cache(tmp_path):
    a = spacer.load_scenes(synthetic=3, seed=5)
    b = spacer.load_scenes(synthetic=3, seed=5)
    c = spacer.load_scenes(synthetic=3, seed=6)
    assert [s.id for s in a] == [s.id for s in b] != [s.id for s in c]
    assert np.array_equal(a[0].trajectories, b[0].trajectories)
    assert all(s.source == "synthetic" for s in a)
    path = tmp_path / "syn.spc"
    assert spacer.save_scenes(a, path) == 3
    back = spacer.load_scenes(path)
    assert [s.id for s in back] == [s.id for s in a]
    assert np.array_equal(back[2].trajectories, a[2].trajectories)
    assert np.array_equal(back[2].map_points, a[2].map_points)


def test_bad_inputs_raise_python_exceptions(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="nope.tfrecord"):
        spacer.load_scenes(tmp_path / "nope.tfrecord")
    bad = tmp_path / "bad.json"
    bad.write_text('{"objects": [}')
    with pytest.raises(ValueError, match="bad.json"):
        spacer.load_scenes(bad)
    with pytest.warns(UserWarning, match="bad.json"):
        ok = spacer.load_scenes([bad, data / "womd" / "637f20cafde22ff8.tfrecord"], skip_bad=True)
    assert len(ok) == 1
    with pytest.raises(ValueError, match="no scenes"):
        spacer.load_scenes()
    with pytest.raises(TypeError):
        spacer.load_scenes(12)


def test_split_observation_views_the_blocks():
    obs = np.arange(2 * spacer.OBSERVATION_LEN, dtype=np.float32).reshape(2, -1)
    ego, partners, roads = spacer.split_observation(obs)
    assert ego.shape == (2, 6) and partners.shape == (2, 63, 6) and roads.shape == (2, 200, 13)
    assert partners[1, 0, 0] == obs[1, 6] and roads[0, 0, 0] == obs[0, 6 + 63 * 6]
    assert np.shares_memory(roads, obs)
    with pytest.raises(ValueError, match="2984"):
        spacer.split_observation(obs[:, :10])
