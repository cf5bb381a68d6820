//! `Scene`, `load_scenes`, `save_scenes`: the scene model and its readers.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArray2, PyArray3, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use spacer_train::scenario::load::{BadScenePolicy, LoadOptions, load_scenes_with};
use spacer_train::scenario::{self, SceneSource};

use crate::data_err;

/// One path or a sequence of them.
pub(crate) fn paths_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
        return Ok(vec![obj.extract::<PathBuf>()?]);
    }
    let mut out = Vec::new();
    for item in obj.try_iter().map_err(|_| {
        PyTypeError::new_err("expected a path (str or os.PathLike) or a sequence of paths")
    })? {
        out.push(item?.extract::<PathBuf>().map_err(|_| {
            PyTypeError::new_err("expected a path (str or os.PathLike) or a sequence of paths")
        })?);
    }
    Ok(out)
}

/// One recorded or generated scene: 91 steps at 10 Hz (current step 10), every
/// object's box and state per step, the map, the signals and the challenge metadata.
#[pyclass(frozen, module = "spacer")]
pub struct Scene {
    pub(crate) inner: Arc<scenario::Scene>,
}

fn source_name(s: SceneSource) -> &'static str {
    match s {
        SceneSource::Womd => "womd",
        SceneSource::Gpudrive => "gpudrive",
        SceneSource::Interaction => "interaction",
        SceneSource::Synthetic => "synthetic",
    }
}

#[pymethods]
impl Scene {
    /// Scenario id.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }

    /// Where it came from: "womd", "gpudrive", "interaction" or "synthetic".
    #[getter]
    fn source(&self) -> &'static str {
        source_name(self.inner.source)
    }

    /// The last logged step before simulation (10).
    #[getter]
    fn current_step(&self) -> usize {
        self.inner.current_step
    }

    /// Steps per trajectory (91).
    #[getter]
    fn num_steps(&self) -> usize {
        self.inner.num_steps()
    }

    /// Objects (tracks).
    #[getter]
    fn num_objects(&self) -> usize {
        self.inner.tracks.len()
    }

    /// Object ids, int64 [n_objects].
    #[getter]
    fn object_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_iter(py, self.inner.tracks.iter().map(|t| t.id))
    }

    /// Object types as WOMD's enum values, int8 [n_objects]: 0 unset, 1 vehicle,
    /// 2 pedestrian, 3 cyclist, 4 other.
    #[getter]
    fn object_types<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i8>> {
        PyArray1::from_iter(
            py,
            self.inner
                .tracks
                .iter()
                .map(|t| t.object_type.proto_value() as i8),
        )
    }

    /// States, float32 [n_objects, n_steps, 6]: x, y, z (m), heading (rad), vx, vy
    /// (m/s); meaningless where `valid` is false.
    #[getter]
    fn trajectories<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f32>>> {
        let (n, t) = (self.inner.tracks.len(), self.inner.num_steps());
        let mut v = Vec::with_capacity(n * t * 6);
        for tr in &self.inner.tracks {
            for s in &tr.states {
                v.extend_from_slice(&[s.x, s.y, s.z, s.heading, s.vx, s.vy]);
            }
        }
        PyArray1::from_vec(py, v).reshape([n, t, 6])
    }

    /// Box sizes, float32 [n_objects, n_steps, 3]: length, width, height (m).
    #[getter]
    fn sizes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f32>>> {
        let (n, t) = (self.inner.tracks.len(), self.inner.num_steps());
        let mut v = Vec::with_capacity(n * t * 3);
        for tr in &self.inner.tracks {
            for s in &tr.states {
                v.extend_from_slice(&[s.length, s.width, s.height]);
            }
        }
        PyArray1::from_vec(py, v).reshape([n, t, 3])
    }

    /// Whether each object was observed at each step, bool [n_objects, n_steps].
    #[getter]
    fn valid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let (n, t) = (self.inner.tracks.len(), self.inner.num_steps());
        let v: Vec<bool> = self
            .inner
            .tracks
            .iter()
            .flat_map(|tr| tr.states.iter().map(|s| s.valid))
            .collect();
        PyArray1::from_vec(py, v).reshape([n, t])
    }

    /// Index of the self-driving car, if known.
    #[getter]
    fn sdc_index(&self) -> Option<usize> {
        self.inner.sdc_index
    }

    /// Track indices of the tracks to predict, int64.
    #[getter]
    fn tracks_to_predict<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_iter(
            py,
            self.inner
                .tracks_to_predict
                .iter()
                .map(|t| t.track_index as i64),
        )
    }

    /// Track indices the WOSAC metrics score (the self-driving car and the tracks to
    /// predict), int64, increasing.
    #[getter]
    fn evaluated_tracks<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_iter(
            py,
            self.inner.evaluated_tracks().into_iter().map(|i| i as i64),
        )
    }

    /// Object ids the source marks as interesting, int64.
    #[getter]
    fn objects_of_interest<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, &self.inner.objects_of_interest)
    }

    /// Map feature ids, int64 [n_features].
    #[getter]
    fn map_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_iter(py, self.inner.map.iter().map(|f| f.id))
    }

    /// Map feature kinds: "lane", "road_line", "road_edge", "stop_sign", "crosswalk",
    /// "speed_bump" or "driveway".
    #[getter]
    fn map_kinds(&self) -> Vec<&'static str> {
        self.inner.map.iter().map(|f| f.kind.name()).collect()
    }

    /// Start of each feature's points in `map_points`, int64 [n_features + 1].
    #[getter]
    fn map_offsets<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let mut off = Vec::with_capacity(self.inner.map.len() + 1);
        let mut n = 0i64;
        off.push(0);
        for f in &self.inner.map {
            n += f.points.len() as i64;
            off.push(n);
        }
        PyArray1::from_vec(py, off)
    }

    /// Every map point, float32 [n_points, 3] (x, y, z): feature `i` is
    /// `map_points[map_offsets[i]:map_offsets[i + 1]]`.
    #[getter]
    fn map_points<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let v: Vec<f32> = self
            .inner
            .map
            .iter()
            .flat_map(|f| f.points.iter().flat_map(|p| [p.x, p.y, p.z]))
            .collect();
        let n = v.len() / 3;
        PyArray1::from_vec(py, v).reshape([n, 3])
    }

    /// Each map feature's polyline (or polygon, or single point) as float32 [k, 3].
    #[getter]
    fn polylines<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        self.inner
            .map
            .iter()
            .map(|f| {
                let v: Vec<f32> = f.points.iter().flat_map(|p| [p.x, p.y, p.z]).collect();
                PyArray1::from_vec(py, v).reshape([f.points.len(), 3])
            })
            .collect()
    }

    /// Lanes with a traffic signal at some step, int64 [n_lanes].
    #[getter]
    fn signal_lanes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_vec(py, self.signal_lane_ids())
    }

    /// Signal states per step and lane (`signal_lanes` order), int8 [n_steps, n_lanes]:
    /// WOMD's values (0 unknown or absent, 1 arrow stop, 2 arrow caution, 3 arrow go,
    /// 4 stop, 5 caution, 6 go, 7 flashing stop, 8 flashing caution).
    #[getter]
    fn signal_states<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i8>>> {
        let lanes = self.signal_lane_ids();
        let steps = self.inner.signals.len();
        let mut v = vec![0i8; steps * lanes.len()];
        for (t, at) in self.inner.signals.iter().enumerate() {
            for s in at {
                if let Ok(j) = lanes.binary_search(&s.lane) {
                    v[t * lanes.len() + j] = s.state.proto_value() as i8;
                }
            }
        }
        PyArray1::from_vec(py, v).reshape([steps, lanes.len()])
    }

    /// Where each signalled lane's traffic stops (its first stop point), float32
    /// [n_lanes, 3].
    #[getter]
    fn signal_stop_points<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let lanes = self.signal_lane_ids();
        let mut v = vec![0.0f32; lanes.len() * 3];
        let mut seen = vec![false; lanes.len()];
        for s in self.inner.signals.iter().flatten() {
            if let Ok(j) = lanes.binary_search(&s.lane)
                && !seen[j]
            {
                seen[j] = true;
                v[3 * j..3 * j + 3].copy_from_slice(&[
                    s.stop_point.x,
                    s.stop_point.y,
                    s.stop_point.z,
                ]);
            }
        }
        PyArray1::from_vec(py, v).reshape([lanes.len(), 3])
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "Scene(id={:?}, source={:?}, objects={}, steps={}, map_features={})",
            s.id,
            source_name(s.source),
            s.tracks.len(),
            s.num_steps(),
            s.map.len()
        )
    }
}

impl Scene {
    fn signal_lane_ids(&self) -> Vec<i64> {
        let mut lanes: Vec<i64> = self
            .inner
            .signals
            .iter()
            .flatten()
            .map(|s| s.lane)
            .collect();
        lanes.sort_unstable();
        lanes.dedup();
        lanes
    }
}

/// Loads scenes (see the `spacer.load_scenes` docs).
#[pyfunction]
#[pyo3(signature = (paths=None, *, synthetic=0, seed=0, skip_bad=false, map=None))]
fn load_scenes(
    py: Python<'_>,
    paths: Option<&Bound<'_, PyAny>>,
    synthetic: usize,
    seed: u64,
    skip_bad: bool,
    map: Option<PathBuf>,
) -> PyResult<(Vec<Scene>, Vec<String>)> {
    let paths = match paths {
        Some(p) => paths_of(p)?,
        None => Vec::new(),
    };
    if paths.is_empty() && synthetic == 0 {
        return Err(PyValueError::new_err(
            "no scenes asked for: give paths, synthetic=N, or both",
        ));
    }
    let (scenes, warnings) = py
        .detach(|| {
            let (mut scenes, warnings) = if paths.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                let options = LoadOptions {
                    policy: if skip_bad {
                        BadScenePolicy::Skip
                    } else {
                        BadScenePolicy::Fail
                    },
                    map,
                    quiet: true,
                    ..LoadOptions::default()
                };
                let loaded = load_scenes_with(&paths, options)?;
                let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
                (loaded.scenes, warnings)
            };
            scenes.extend(scenario::dataset::synthetic(synthetic, seed, false));
            Ok::<_, spacer_train::DataError>((scenes, warnings))
        })
        .map_err(data_err)?;
    Ok((
        scenes
            .into_iter()
            .map(|s| Scene { inner: Arc::new(s) })
            .collect(),
        warnings,
    ))
}

/// Writes scenes to a scene cache (`.spc`), atomically; returns how many.
#[pyfunction]
fn save_scenes(py: Python<'_>, scenes: Vec<PyRef<'_, Scene>>, path: PathBuf) -> PyResult<usize> {
    let inner: Vec<Arc<scenario::Scene>> = scenes.iter().map(|s| Arc::clone(&s.inner)).collect();
    py.detach(|| scenario::cache::write_cache(&path, inner.iter().map(|s| &**s)))
        .map_err(data_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scene>()?;
    m.add_function(wrap_pyfunction!(load_scenes, m)?)?;
    m.add_function(wrap_pyfunction!(save_scenes, m)?)?;
    Ok(())
}
