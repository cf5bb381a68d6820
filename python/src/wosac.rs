//! The WOSAC metrics: scores of rollouts given as a submission (files, shards,
//! bytes) or as arrays, and the submission format both ways.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use numpy::{
    AllowTypeChange, PyArray1, PyArrayLike1, PyArrayLikeDyn, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyAttributeError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use rayon::prelude::*;
use spacer_train::metrics::rollouts::{
    ScenarioRollouts, Submission, decode_submission, encode_submission, read_submission_shards,
};
use spacer_train::metrics::{
    MetricsConfig, MetricsError, SceneScores, SimAgentMetrics, SimAgentsBucketedMetrics,
    score_scenario,
};
use spacer_train::scenario;

use crate::scenes::Scene;
use crate::{contiguous, data_err, shape_str, value_err, with_threads};

/// The value of the field `name` among `fields`, or Python's `AttributeError`.
fn attribute(fields: &[(&'static str, f64)], owner: &str, name: &str) -> PyResult<f64> {
    fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| PyAttributeError::new_err(format!("{owner} has no field {name:?}")))
}

/// The leaderboard's buckets (the official `SimAgentsBucketedMetrics`); each field is
/// an attribute by its proto name (`realism_meta_metric`, `min_ade`, ...).
#[pyclass(frozen, module = "spacer.wosac", name = "BucketedScores")]
pub struct Bucketed {
    inner: SimAgentsBucketedMetrics,
}

#[pymethods]
impl Bucketed {
    /// The buckets by proto field name.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.fields() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __getattr__(&self, name: &str) -> PyResult<f64> {
        attribute(&self.inner.fields(), "BucketedScores", name)
    }

    fn __dir__(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.inner.fields().iter().map(|(k, _)| *k).collect();
        names.extend(["to_dict"]);
        names
    }

    fn __getitem__(&self, name: &str) -> PyResult<f64> {
        attribute(&self.inner.fields(), "BucketedScores", name)
            .map_err(|_| PyKeyError::new_err(name.to_string()))
    }

    fn __repr__(&self) -> String {
        let body: Vec<String> = self
            .inner
            .fields()
            .iter()
            .map(|(k, v)| format!("{k}={v:.6}"))
            .collect();
        format!("BucketedScores({})", body.join(", "))
    }
}

/// One scene's scores (the official `SimAgentMetrics`, each field an attribute by
/// its proto name: `metametric`, `min_average_displacement_error`, ...) and their
/// buckets.
#[pyclass(frozen, module = "spacer.wosac", name = "Scores")]
pub struct Scores {
    metrics: SimAgentMetrics,
    #[pyo3(get)]
    bucketed: Py<Bucketed>,
}

impl Scores {
    pub(crate) fn new(py: Python<'_>, s: &SceneScores) -> PyResult<Self> {
        Ok(Self {
            metrics: s.metrics.clone(),
            bucketed: Py::new(
                py,
                Bucketed {
                    inner: s.bucketed.clone(),
                },
            )?,
        })
    }
}

#[pymethods]
impl Scores {
    /// The scene's id (None when the rollouts named none).
    #[getter]
    fn scenario_id(&self) -> Option<String> {
        self.metrics.scenario_id.clone()
    }

    /// `{"SimAgentMetrics": {...}, "SimAgentsBucketedMetrics": {...}}` with the proto
    /// field names, as `spacer metrics --json` writes each scene (NaN where no
    /// object-step qualifies).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = PyDict::new(py);
        if let Some(id) = &self.metrics.scenario_id {
            m.set_item("scenario_id", id)?;
        }
        for (k, v) in self.metrics.fields() {
            m.set_item(k, v)?;
        }
        let d = PyDict::new(py);
        d.set_item("SimAgentMetrics", m)?;
        d.set_item("SimAgentsBucketedMetrics", self.bucketed.get().to_dict(py)?)?;
        Ok(d)
    }

    fn __getattr__(&self, name: &str) -> PyResult<f64> {
        attribute(&self.metrics.fields(), "Scores", name)
    }

    fn __dir__(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.metrics.fields().iter().map(|(k, _)| *k).collect();
        names.extend(["scenario_id", "bucketed", "to_dict"]);
        names
    }

    /// A score by proto field name, of `SimAgentMetrics` or of the buckets.
    fn __getitem__(&self, name: &str) -> PyResult<f64> {
        if let Some((_, v)) = self.metrics.fields().iter().find(|(k, _)| *k == name) {
            return Ok(*v);
        }
        self.bucketed.get().__getitem__(name)
    }

    fn __repr__(&self) -> String {
        let b = &self.bucketed.get().inner;
        format!(
            "Scores(scenario_id={:?}, metametric={:.6}, kinematic={:.6}, interactive={:.6}, \
             map_based={:.6}, min_ade={:.4})",
            self.metrics.scenario_id.as_deref().unwrap_or(""),
            self.metrics.metametric,
            b.kinematic_metrics,
            b.interactive_metrics,
            b.map_based_metrics,
            b.min_ade
        )
    }
}

/// A built-in config (`2024`, `2025`) or a text-format config file.
pub(crate) fn config_of(spec: &str) -> PyResult<MetricsConfig> {
    if !matches!(spec, "2024" | "2025") && !Path::new(spec).exists() {
        return Err(PyValueError::new_err(format!(
            "metrics config {spec:?}: neither a built-in config (\"2024\", \"2025\") nor a \
             text-format SimAgentMetricsConfig file"
        )));
    }
    MetricsConfig::resolve(spec).map_err(data_err)
}

/// Scores each scene against its rollouts, in parallel, without the GIL.
fn score_pairs(
    py: Python<'_>,
    scenes: &[Arc<scenario::Scene>],
    rollouts: &[&ScenarioRollouts],
    config: &MetricsConfig,
    threads: Option<usize>,
) -> PyResult<Vec<Scores>> {
    let scored = py
        .detach(|| {
            with_threads(threads, || {
                scenes
                    .par_iter()
                    .zip(rollouts)
                    .map(|(s, r)| {
                        score_scenario(config, s, r).and_then(|m| SceneScores::new(config, m))
                    })
                    .collect::<Result<Vec<_>, MetricsError>>()
            })
        })?
        .map_err(value_err)?;
    scored.iter().map(|s| Scores::new(py, s)).collect()
}

fn inner(scenes: &[PyRef<'_, Scene>]) -> Vec<Arc<scenario::Scene>> {
    scenes.iter().map(|s| Arc::clone(&s.inner)).collect()
}

/// Scores `scenes` against a submission, each against its `ScenarioRollouts`.
fn score_submission(
    py: Python<'_>,
    scenes: &[PyRef<'_, Scene>],
    submission: &Submission,
    config: &str,
    threads: Option<usize>,
) -> PyResult<Vec<Scores>> {
    let config = config_of(config)?;
    let scenes = inner(scenes);
    let mut rollouts = Vec::with_capacity(scenes.len());
    for s in &scenes {
        match submission.scenario(&s.id) {
            Some(r) => rollouts.push(r),
            None => {
                let mut have: Vec<&str> = submission
                    .scenario_rollouts
                    .iter()
                    .map(|r| r.scenario_id.as_str())
                    .take(6)
                    .collect();
                if submission.scenario_rollouts.len() > 6 {
                    have.push("...");
                }
                return Err(PyValueError::new_err(format!(
                    "the submission has no rollouts of scene {} (it has {} scenes: {})",
                    s.id,
                    submission.scenario_rollouts.len(),
                    have.join(", ")
                )));
            }
        }
    }
    score_pairs(py, &scenes, &rollouts, &config, threads)
}

/// Scores scenes against a submission in one or more shard files.
#[pyfunction]
#[pyo3(signature = (scenes, paths, config, threads=None))]
fn score_submission_files(
    py: Python<'_>,
    scenes: Vec<PyRef<'_, Scene>>,
    paths: Vec<PathBuf>,
    config: &str,
    threads: Option<usize>,
) -> PyResult<Vec<Scores>> {
    let submission = py
        .detach(|| read_submission_shards(&paths))
        .map_err(data_err)?;
    score_submission(py, &scenes, &submission, config, threads)
}

/// Scores scenes against a submission's bytes.
#[pyfunction]
#[pyo3(signature = (scenes, data, config, threads=None))]
fn score_submission_bytes(
    py: Python<'_>,
    scenes: Vec<PyRef<'_, Scene>>,
    data: &[u8],
    config: &str,
    threads: Option<usize>,
) -> PyResult<Vec<Scores>> {
    let submission = py
        .detach(|| decode_submission(data, Path::new("<bytes>")))
        .map_err(data_err)?;
    score_submission(py, &scenes, &submission, config, threads)
}

/// One scene's rollouts as numpy arrays, held while they are read.
struct ArraySet<'py> {
    ids: PyReadonlyArray1<'py, i64>,
    coords: [PyReadonlyArrayDyn<'py, f32>; 4],
}

const COORDS: [&str; 4] = ["x", "y", "z", "heading"];

/// The values of an [`ArraySet`]: ids, x / y / z / heading, steps per trajectory.
type ArrayViews<'a> = (Cow<'a, [i64]>, [Cow<'a, [f32]>; 4], usize);

type RolloutArrays<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

impl<'py> ArraySet<'py> {
    fn extract(t: &RolloutArrays<'py>, which: &str) -> PyResult<Self> {
        let ids =
            t.0.extract::<PyArrayLike1<'py, i64, AllowTypeChange>>()
                .map_err(|e| {
                    PyValueError::new_err(format!(
                        "{which}object_ids must be a 1-D array of integer ids: {e}"
                    ))
                })?;
        let coord = |o: &Bound<'py, PyAny>, name: &str| {
            o.extract::<PyArrayLikeDyn<'py, f32, AllowTypeChange>>()
                .map(|a| a.readonly())
                .map_err(|e| {
                    PyValueError::new_err(format!("{which}{name} must be a float array: {e}"))
                })
        };
        let set = Self {
            ids: ids.readonly(),
            coords: [
                coord(&t.1, "x")?,
                coord(&t.2, "y")?,
                coord(&t.3, "z")?,
                coord(&t.4, "heading")?,
            ],
        };
        let shape = set.coords[0].shape().to_vec();
        if shape.len() != 3 {
            return Err(PyValueError::new_err(format!(
                "{which}x must be [n_rollouts, n_objects, n_steps]; it has shape {}",
                shape_str(&shape)
            )));
        }
        for (a, name) in set.coords.iter().zip(COORDS).skip(1) {
            if a.shape() != shape.as_slice() {
                return Err(PyValueError::new_err(format!(
                    "{which}{name} has shape {}, x has {}",
                    shape_str(a.shape()),
                    shape_str(&shape)
                )));
            }
        }
        let n = set.ids.len();
        if shape[1] != n {
            return Err(PyValueError::new_err(format!(
                "{which}object_ids has {n} entries, x has {} objects (shape {})",
                shape[1],
                shape_str(&shape)
            )));
        }
        Ok(set)
    }

    fn n_steps(&self) -> usize {
        self.coords[0].shape()[2]
    }
}

/// Scores scenes against rollouts given as arrays, one
/// `(object_ids, x, y, z, heading)` per scene.
#[pyfunction]
#[pyo3(signature = (scenes, rollouts, config, threads=None))]
fn score_arrays<'py>(
    py: Python<'py>,
    scenes: Vec<PyRef<'py, Scene>>,
    rollouts: Vec<RolloutArrays<'py>>,
    config: &str,
    threads: Option<usize>,
) -> PyResult<Vec<Scores>> {
    if scenes.len() != rollouts.len() {
        return Err(PyValueError::new_err(format!(
            "{} scenes but {} sets of rollout arrays",
            scenes.len(),
            rollouts.len()
        )));
    }
    let config = config_of(config)?;
    let many = rollouts.len() > 1;
    let sets = rollouts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let which = if many {
                format!("rollouts[{i}]: ")
            } else {
                String::new()
            };
            ArraySet::extract(t, &which)
        })
        .collect::<PyResult<Vec<_>>>()?;
    let scenes = inner(&scenes);
    let views: Vec<ArrayViews<'_>> = sets
        .iter()
        .map(|s| {
            (
                contiguous(&s.ids),
                s.coords.each_ref().map(|a| contiguous(a)),
                s.n_steps(),
            )
        })
        .collect();
    let built = py
        .detach(|| {
            scenes
                .par_iter()
                .zip(&views)
                .map(|(scene, (ids, [x, y, z, h], steps))| {
                    ScenarioRollouts::from_arrays(&scene.id, ids, *steps, x, y, z, h)
                })
                .collect::<Result<Vec<_>, MetricsError>>()
        })
        .map_err(value_err)?;
    let refs: Vec<&ScenarioRollouts> = built.iter().collect();
    score_pairs(py, &scenes, &refs, &config, threads)
}

type ArraysOut<'py> = (
    String,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// One `ScenarioRollouts` as arrays: every rollout must list the same objects, in the
/// same order, with trajectories of one length.
fn to_arrays<'py>(py: Python<'py>, r: &ScenarioRollouts) -> PyResult<ArraysOut<'py>> {
    let first = r
        .joint_scenes
        .first()
        .ok_or_else(|| PyValueError::new_err(format!("scene {}: no rollouts", r.scenario_id)))?;
    let ids: Vec<i64> = first.trajectories.iter().map(|t| t.object_id).collect();
    let steps = first.trajectories.first().map_or(0, |t| t.len());
    let (n_r, n_o) = (r.joint_scenes.len(), ids.len());
    let mut out: [Vec<f32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n_r * n_o * steps));
    for (k, js) in r.joint_scenes.iter().enumerate() {
        if js.trajectories.len() != n_o
            || js
                .trajectories
                .iter()
                .zip(&ids)
                .any(|(t, &id)| t.object_id != id)
        {
            return Err(PyValueError::new_err(format!(
                "scene {}: rollout {k} lists other objects than rollout 0 (the array form \
                 needs one object order)",
                r.scenario_id
            )));
        }
        for t in &js.trajectories {
            if t.len() != steps {
                return Err(PyValueError::new_err(format!(
                    "scene {}: rollout {k}, object {} has {} steps, object {} of rollout 0 has \
                     {steps}",
                    r.scenario_id,
                    t.object_id,
                    t.len(),
                    ids[0]
                )));
            }
            out[0].extend_from_slice(&t.x);
            out[1].extend_from_slice(&t.y);
            out[2].extend_from_slice(&t.z);
            out[3].extend_from_slice(&t.heading);
        }
    }
    let [x, y, z, h] = out.map(|v| {
        PyArray1::from_vec(py, v)
            .reshape([n_r, n_o, steps])
            .map(Bound::into_any)
    });
    Ok((
        r.scenario_id.clone(),
        PyArray1::from_vec(py, ids),
        x?,
        y?,
        z?,
        h?,
    ))
}

/// Reads a submission (shard files, or its bytes) into arrays per scene.
#[pyfunction]
fn read_submission<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
) -> PyResult<Vec<ArraysOut<'py>>> {
    let submission = if let Ok(b) = source.cast::<PyBytes>() {
        let data = b.as_bytes();
        py.detach(|| decode_submission(data, Path::new("<bytes>")))
    } else {
        let paths = crate::scenes::paths_of(source)?;
        py.detach(|| read_submission_shards(&paths))
    }
    .map_err(data_err)?;
    submission
        .scenario_rollouts
        .iter()
        .map(|r| to_arrays(py, r))
        .collect()
}

/// The `.binproto` bytes of a `SimAgentsChallengeSubmission` holding the given
/// scenes' rollouts, each `(scenario_id, object_ids, x, y, z, heading)`.
#[pyfunction]
#[pyo3(signature = (rollouts, method_name=None))]
fn submission_bytes<'py>(
    py: Python<'py>,
    rollouts: Vec<(String, RolloutArrays<'py>)>,
    method_name: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut submission = Submission::default();
    submission.info.unique_method_name = method_name;
    for (i, (id, arrays)) in rollouts.into_iter().enumerate() {
        let which = format!("rollouts[{i}] (scene {id}): ");
        let set = ArraySet::extract(&arrays, &which)?;
        let ids = contiguous(&set.ids);
        let [x, y, z, h] = set.coords.each_ref().map(|a| contiguous(a));
        let r = ScenarioRollouts::from_arrays(&id, &ids, set.n_steps(), &x, &y, &z, &h)
            .map_err(value_err)?;
        submission.scenario_rollouts.push(r);
    }
    let bytes = encode_submission(&submission).map_err(data_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// One rollout equal to the logged future of every object valid at the current step
/// (the official `scenario_to_joint_scene`), as arrays.
#[pyfunction]
fn logged_rollouts<'py>(py: Python<'py>, scene: PyRef<'py, Scene>) -> PyResult<ArraysOut<'py>> {
    to_arrays(py, &ScenarioRollouts::logged(&scene.inner))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scores>()?;
    m.add_class::<Bucketed>()?;
    m.add_function(wrap_pyfunction!(score_submission_files, m)?)?;
    m.add_function(wrap_pyfunction!(score_submission_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(score_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(read_submission, m)?)?;
    m.add_function(wrap_pyfunction!(submission_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(logged_rollouts, m)?)?;
    Ok(())
}
