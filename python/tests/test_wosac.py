"""WOSAC scores through Python: every golden case of the shipped data, through both
input forms (submission and arrays), under both built-in configs; shapes, dtypes,
shards, parallel scoring and bad inputs."""

import json

import numpy as np
import pytest

import spacer
from spacer import wosac

CASES = ["constvel", "logged", "noise_large", "sdc_go"]
CONFIGS = {"2025": "challenge_2025_sim_agents", "2024": "challenge_2024"}


def golden(data, case):
    with open(data / "wosac" / "golden" / f"637f20cafde22ff8_{case}.json") as f:
        return json.load(f)["metrics"]


def submission_path(data, case):
    return data / "wosac" / f"637f20cafde22ff8_{case}_submission.binproto"


def assert_golden(scores, expected, what):
    d = scores.to_dict()
    n = 0
    for block in ("SimAgentMetrics", "SimAgentsBucketedMetrics"):
        for name, want in expected[block].items():
            if name == "scenario_id":
                assert d[block][name] == want
                continue
            got = d[block][name]
            assert abs(got - want) <= 1e-4, f"{what}: {block}.{name} = {got}, official {want}"
            n += 1
    assert n == 24, what


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("config", ["2025", "2024"])
def test_golden_values_through_both_input_forms(data, womd_scene, case, config):
    expected = golden(data, case)[CONFIGS[config]]
    if case == "logged":
        # No file ships for the logged future: arrays from the scene, and the bytes of
        # the submission the package writes from them.
        arrays = wosac.logged_rollouts(womd_scene)
        assert arrays.num_rollouts == 1
        submission = wosac.submission_bytes([arrays])
    else:
        submission = submission_path(data, case)
        (arrays,) = wosac.read_submission(submission)
        assert arrays.x.shape == (32, 50, 80)
    assert_golden(wosac.score(womd_scene, submission, config), expected, f"{case}/{config} submission")
    assert_golden(wosac.score(womd_scene, arrays, config), expected, f"{case}/{config} arrays")


def test_the_array_forms_dtypes_and_layouts_agree(data, womd_scene):
    (r,) = wosac.read_submission(submission_path(data, "constvel"))
    assert r.scenario_id == "637f20cafde22ff8"
    assert r.object_ids.dtype == np.int64 and r.object_ids.shape == (50,)
    for a in (r.x, r.y, r.z, r.heading):
        assert a.dtype == np.float32 and a.shape == (32, 50, 80)
    want = wosac.score(womd_scene, r).metametric
    assert abs(want - 0.25824) < 1e-4
    # A plain tuple, a mapping, float64, lists for ids, and non-contiguous views.
    tup = (r.object_ids.tolist(), r.x, r.y, r.z, r.heading)
    mapping = {"object_ids": r.object_ids, "x": r.x, "y": r.y, "z": r.z, "heading": r.heading}
    f64 = tuple(np.asarray(a, dtype=np.float64) for a in (r.object_ids, r.x, r.y, r.z, r.heading))
    fortran = (r.object_ids,) + tuple(np.asfortranarray(a) for a in (r.x, r.y, r.z, r.heading))
    strided = np.stack([r.x, r.x], axis=-1)[..., 0]
    assert np.array_equal(strided, r.x) and not strided.flags.c_contiguous
    for form in (tup, mapping, f64, fortran, (r.object_ids, strided, r.y, r.z, r.heading)):
        assert wosac.score(womd_scene, form).metametric == want
    s = wosac.score(womd_scene, r)
    assert s["metametric"] == s.metametric == s.bucketed.realism_meta_metric
    assert s["kinematic_metrics"] == s.bucketed.kinematic_metrics
    with pytest.raises(KeyError):
        s["no_such_field"]
    # Every proto field is an attribute; others raise AttributeError (so hasattr works).
    d = s.to_dict()
    for k, v in d["SimAgentMetrics"].items():
        assert getattr(s, k) == v or (v != v and getattr(s, k) != getattr(s, k))
    for k, v in d["SimAgentsBucketedMetrics"].items():
        assert getattr(s.bucketed, k) == v or (v != v)
    assert not hasattr(s, "no_such_field") and not hasattr(s.bucketed, "no_such_field")
    assert "min_average_displacement_error" in dir(s) and "min_ade" in dir(s.bucketed)
    assert "metametric" in repr(s)


def test_submissions_as_bytes_shards_and_many_scenes(data, womd_scene, tmp_path):
    path = submission_path(data, "constvel")
    raw = path.read_bytes()
    a = wosac.score(womd_scene, path).to_dict()
    assert wosac.score(womd_scene, raw).to_dict() == a
    assert wosac.score(womd_scene, bytearray(raw)).to_dict() == a
    assert wosac.score(womd_scene, str(path)).to_dict() == a
    assert wosac.score(data / "womd" / "637f20cafde22ff8.tfrecord", path).to_dict() == a
    # Two shards of one submission: this scene, and the logged future of another.
    (other,) = spacer.load_scenes(data / "womd" / "ee519cf571686d19.tfrecord")
    shard0 = tmp_path / "sub.binproto-00000-of-00002"
    shard1 = tmp_path / "sub.binproto-00001-of-00002"
    shard0.write_bytes(raw)
    wosac.write_submission(shard1, [wosac.logged_rollouts(other)], method_name="log")
    many = wosac.score_many([womd_scene, other], [shard0, shard1])
    assert [s.scenario_id for s in many] == ["637f20cafde22ff8", "ee519cf571686d19"]
    assert many[0].to_dict() == a
    alone = wosac.score(other, wosac.logged_rollouts(other))
    assert many[1].to_dict() == alone.to_dict()
    assert wosac.score(other, [shard0, shard1]).to_dict() == alone.to_dict()
    # Arrays per scene: a list in scene order, or a mapping by scenario id; threads.
    (cv,) = wosac.read_submission(path)
    by_list = wosac.score_many([womd_scene, other], [cv, wosac.logged_rollouts(other)], threads=1)
    by_id = wosac.score_many(
        [womd_scene, other], {"ee519cf571686d19": wosac.logged_rollouts(other), "637f20cafde22ff8": cv}
    )
    assert [s.to_dict() for s in by_list] == [s.to_dict() for s in by_id] == [s.to_dict() for s in many]
    # The written submission reads back as arrays equal to what was written.
    (back,) = wosac.read_submission(shard1)
    logged = wosac.logged_rollouts(other)
    for f in ("object_ids", "x", "y", "z", "heading"):
        assert np.array_equal(getattr(back, f), getattr(logged, f))
    # A scene the submission lacks, and a scene in two shards.
    with pytest.raises(ValueError, match="no rollouts of scene ee519cf571686d19"):
        wosac.score_many([womd_scene, other], shard0)
    with pytest.raises(ValueError, match="also in shard"):
        wosac.score(womd_scene, [shard0, shard0])


def test_bad_rollouts_raise_errors_that_say_what_is_wrong(data, womd_scene, tmp_path):
    (r,) = wosac.read_submission(submission_path(data, "constvel"))
    ids, x, y, z, h = r.object_ids, r.x, r.y, r.z, r.heading

    def bad(match, *arrays, config="2025"):
        with pytest.raises(ValueError, match=match):
            wosac.score(womd_scene, arrays, config)

    # A missing object, an unknown one, a repeated one.
    bad(r"objects valid at the current step are not simulated: \[1580\]", ids[1:], x[:, 1:], y[:, 1:], z[:, 1:], h[:, 1:])
    bad("object 99999.*not an object valid at the current step", np.where(ids == ids[3], 99999, ids), x, y, z, h)
    bad("object 1594.*also simulated by trajectory 3", np.where(ids == ids[3], ids[4], ids), x, y, z, h)
    # NaN and infinity, named with the object and step.
    xn = x.copy()
    xn[2, 7, 11] = np.nan
    bad(r"rollout 2, trajectory 7 \(object 1604\): x\[11\] = NaN is not finite", ids, xn, y, z, h)
    hi = h.copy()
    hi[0, 0, 0] = np.inf
    bad(r"heading\[0\] = -?inf is not finite", ids, x, y, z, hi)
    # Shapes.
    bad(r"x must be \[n_rollouts, n_objects, n_steps\]; it has shape \(50, 80\)", ids, x[0], y[0], z[0], h[0])
    bad(r"y has shape \(32, 50, 79\), x has \(32, 50, 80\)", ids, x, y[:, :, 1:], z, h)
    bad("object_ids has 49 entries, x has 50 objects", ids[1:], x, y, z, h)
    bad("40 x values, expected 80", ids, x[:, :, :40], y[:, :, :40], z[:, :, :40], h[:, :, :40])
    bad("float array", ids, "abc", y, z, h)
    # Configs.
    bad("neither a built-in config", ids, x, y, z, h, config="2023")
    with pytest.raises(TypeError):
        wosac.score(womd_scene, 3.5)
    with pytest.raises(ValueError, match="object_ids"):
        wosac.score(womd_scene, {"x": x})
    # Files: missing, not a submission.
    with pytest.raises(FileNotFoundError, match="missing.binproto"):
        wosac.score(womd_scene, tmp_path / "missing.binproto")
    junk = tmp_path / "junk.binproto"
    junk.write_bytes(b"\xff\xff\xff\x00")
    with pytest.raises(ValueError, match="junk.binproto"):
        wosac.score(womd_scene, junk)
    with pytest.raises(ValueError, match="not a SimAgentsChallengeSubmission"):
        wosac.score(womd_scene, b"\xff\xff\xff\x00")
    with pytest.raises(ValueError, match="one scene"):
        wosac.score(data / "womd", r)
    with pytest.raises(ValueError, match="scenario_id"):
        wosac.submission_bytes([wosac.Rollouts(ids, x, y, z, h)])


def test_threads_must_be_positive(data, womd_scene):
    with pytest.raises(ValueError, match="threads"):
        wosac.score_many([womd_scene], submission_path(data, "constvel"), threads=0)
