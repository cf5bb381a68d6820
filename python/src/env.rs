//! `Env`: the batched simulator as a vector environment (spacer-train's `env::VecEnv`).

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{AllowTypeChange, PyArray1, PyArray2, PyArrayLike1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use spacer_core::tokenizer::Vocabulary;
use spacer_train::env::{EnvConfig, EnvError, VecEnv};
use spacer_train::metrics::rollouts::encode_submission;
use spacer_train::ppo::PpoConfig;
use spacer_train::sim::{CollisionBehaviour, ControlSelection, GoalBehaviour};

use crate::policy::Policy;
use crate::scenes::Scene;
use crate::wosac::Scores;
use crate::{data_err, value_err, with_threads};

fn env_err(e: EnvError) -> PyErr {
    match e {
        EnvError::State(_) => pyo3::exceptions::PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// The batched driving simulator as a vector environment, for a policy of your own.
///
/// ``Env(scenes, worlds_per_scene=1, ...)`` simulates ``worlds_per_scene``
/// independently seeded copies of each scene. Each row is one controlled agent of one
/// world (every vehicle, pedestrian and cyclist valid at the current step, at most
/// ``max_controlled`` per world, the self-driving car and the tracks to predict first;
/// ``control="tracks_to_predict"`` controls only those); every other object replays
/// its log. The rows are fixed for the environment's life (``row_world``,
/// ``row_scene``, ``row_track``, ``row_object_id``, ``row_kind`` describe them).
///
/// An episode: ``reset(seed)`` replays the 11 logged steps and returns the first
/// observations; then ``decisions`` (40) calls of ``step(tokens)``, each advancing
/// every world 0.2 s (two 10 Hz steps) with one token per row: an index into the
/// agent kind's vocabulary (``num_actions`` tokens: the kinematic grid, a vocabulary
/// file, or a ``Policy``'s own), ``spacer.HOLD`` (-1) to stand still or ``spacer.LOG``
/// (-2) to follow the log. ``step`` returns ``(observations, rewards, dones, events)``:
///
/// - observations: float32 [rows, observation_len], spacer-core's layout (see the
///   ``spacer`` module docs; ``spacer.split_observation`` cuts it into blocks). It is
///   the environment's own buffer, overwritten in place by the next ``reset`` or
///   ``step`` (no copy is made): ``obs.copy()`` keeps one.
/// - rewards: float32 [rows], the trainer's reward terms (``rewards={"goal": 1.0,
///   "collision": -0.75, "offroad": -0.75}`` by default, or those of
///   ``train_config``): ``goal`` once at the decision that reaches the goal (within
///   ``goal_radius`` of the last logged position), ``collision`` / ``offroad`` at
///   every decision whose steps hold one.
/// - dones: bool [rows], true when the agent's episode ended at or before this
///   decision (stopped or removed by ``goal`` / ``collision`` = ``"stop"`` /
///   ``"remove"``, or the last decision). Tokens of rows that no longer act are
///   ignored; they are rewarded 0 (``acting`` tells which rows act next).
/// - events: uint8 [rows], bits of the two steps: 1 collision, 2 off-road (vehicles
///   touching a road edge), 4 goal reached.
///
/// When ``done``, ``submission()`` gives the rollouts as a challenge submission (one
/// ``ScenarioRollouts`` per scene, its worlds the joint scenes) and ``score()`` their
/// WOSAC scores. ``train_config`` (``"cpu-demo"``, ``"cpu"``, ``"paper"`` or a TOML
/// path) takes the simulator settings and reward terms of a trainer configuration;
/// keyword arguments given explicitly override it. Stepping runs in Rust, in
/// parallel over worlds and agents, without the GIL.
#[pyclass(module = "spacer")]
pub struct Env {
    env: VecEnv,
    obs: Py<PyArray2<f32>>,
}

fn collision_of(s: &str) -> PyResult<CollisionBehaviour> {
    match s {
        "ignore" => Ok(CollisionBehaviour::Ignore),
        "stop" => Ok(CollisionBehaviour::Stop),
        "remove" => Ok(CollisionBehaviour::Remove),
        _ => Err(PyValueError::new_err(format!(
            "collision must be \"ignore\", \"stop\" or \"remove\", not {s:?}"
        ))),
    }
}

fn goal_of(s: &str) -> PyResult<GoalBehaviour> {
    match s {
        "continue" => Ok(GoalBehaviour::Continue),
        "stop" => Ok(GoalBehaviour::Stop),
        "remove" => Ok(GoalBehaviour::Remove),
        _ => Err(PyValueError::new_err(format!(
            "goal must be \"continue\", \"stop\" or \"remove\", not {s:?}"
        ))),
    }
}

fn control_of(s: &str) -> PyResult<ControlSelection> {
    match s {
        "all" => Ok(ControlSelection::AllValid),
        "tracks_to_predict" => Ok(ControlSelection::TracksToPredict),
        _ => Err(PyValueError::new_err(format!(
            "control must be \"all\" or \"tracks_to_predict\", not {s:?}"
        ))),
    }
}

impl Env {
    fn row_array<'py, T: numpy::Element>(
        &self,
        py: Python<'py>,
        f: impl Fn(spacer_train::env::RowInfo) -> T,
    ) -> Bound<'py, PyArray1<T>> {
        PyArray1::from_iter(py, (0..self.env.rows()).map(|r| f(self.env.row_info(r))))
    }
}

#[pymethods]
impl Env {
    #[new]
    #[pyo3(signature = (
        scenes, *, worlds_per_scene=1, max_controlled=None, control=None, collision=None,
        goal=None, goal_radius=None, goal_dropout=None, box_scale=None, rewards=None,
        vocabulary=None, train_config=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        scenes: Vec<PyRef<'_, Scene>>,
        worlds_per_scene: usize,
        max_controlled: Option<usize>,
        control: Option<&str>,
        collision: Option<&str>,
        goal: Option<&str>,
        goal_radius: Option<f32>,
        goal_dropout: Option<f32>,
        box_scale: Option<f32>,
        rewards: Option<&Bound<'_, PyDict>>,
        vocabulary: Option<&Bound<'_, PyAny>>,
        train_config: Option<&str>,
    ) -> PyResult<Self> {
        let mut config = match train_config {
            Some(c) => EnvConfig::from_train_config(&PpoConfig::resolve(c).map_err(value_err)?),
            None => EnvConfig::default(),
        };
        config.worlds_per_scene = worlds_per_scene;
        let sim = &mut config.sim;
        if let Some(v) = max_controlled {
            sim.max_controlled = v;
        }
        if let Some(v) = control {
            sim.control = control_of(v)?;
        }
        if let Some(v) = collision {
            sim.collision_behaviour = collision_of(v)?;
        }
        if let Some(v) = goal {
            sim.goal_behaviour = goal_of(v)?;
        }
        if let Some(v) = goal_radius {
            sim.goal_radius = v;
        }
        if let Some(v) = goal_dropout {
            sim.goal_dropout = v;
        }
        if let Some(v) = box_scale {
            sim.box_scale = v;
        }
        if let Some(d) = rewards {
            for (k, v) in d.iter() {
                let key: String = k.extract()?;
                let v: f32 = v.extract().map_err(|_| {
                    PyTypeError::new_err(format!("reward {key:?} must be a number"))
                })?;
                if !v.is_finite() {
                    return Err(PyValueError::new_err(format!(
                        "reward {key:?} must be finite"
                    )));
                }
                match key.as_str() {
                    "goal" => config.rewards.goal = v,
                    "collision" => config.rewards.collision = v,
                    "offroad" => config.rewards.offroad = v,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "unknown reward term {key:?}: the terms are goal, collision, offroad"
                        )));
                    }
                }
            }
        }
        let vocab: Vocabulary = match vocabulary {
            None => spacer_train::vocab::read_or_grid(None).map_err(data_err)?,
            Some(v) => {
                if let Ok(p) = v.cast::<Policy>() {
                    let p = p.get();
                    config.sim.observation = p.file.model().observation;
                    p.vocabulary()?
                } else {
                    let path: PathBuf = v.extract().map_err(|_| {
                        PyTypeError::new_err(
                            "vocabulary must be a spacer.Policy or the path of a vocabulary file",
                        )
                    })?;
                    spacer_train::vocab::read_vocabulary(&path).map_err(data_err)?
                }
            }
        };
        let scenes: Vec<Arc<spacer_train::scenario::Scene>> =
            scenes.iter().map(|s| Arc::clone(&s.inner)).collect();
        let env = py
            .detach(|| VecEnv::new(scenes, &config, vocab))
            .map_err(env_err)?;
        let obs = PyArray2::<f32>::zeros(py, [env.rows(), env.observation_len()], false);
        Ok(Self {
            env,
            obs: obs.unbind(),
        })
    }

    /// Rows: controlled agents over all worlds.
    #[getter]
    fn num_rows(&self) -> usize {
        self.env.rows()
    }

    fn __len__(&self) -> usize {
        self.env.rows()
    }

    /// Floats per observation row.
    #[getter]
    fn observation_len(&self) -> usize {
        self.env.observation_len()
    }

    /// Tokens per agent kind (the action count).
    #[getter]
    fn num_actions(&self) -> usize {
        self.env.num_tokens()
    }

    /// Worlds (scenes x worlds_per_scene).
    #[getter]
    fn num_worlds(&self) -> usize {
        self.env.world_scene().len()
    }

    /// The scenes, in the order given.
    #[getter]
    fn scenes(&self) -> Vec<Scene> {
        self.env
            .scenes()
            .iter()
            .map(|s| Scene {
                inner: Arc::clone(s),
            })
            .collect()
    }

    /// Decisions per episode (40: 80 steps at 10 Hz, one decision per 0.2 s).
    #[getter]
    fn decisions(&self) -> usize {
        self.env.decisions()
    }

    /// Decisions stepped in the current episode.
    #[getter]
    fn decision(&self) -> usize {
        self.env.decision()
    }

    /// True when the episode is over (or before the first reset).
    #[getter]
    fn done(&self) -> bool {
        self.env.is_done()
    }

    /// The reward terms: {"goal", "collision", "offroad"}.
    #[getter]
    fn rewards<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let r = self.env.rewards();
        d.set_item("goal", r.goal)?;
        d.set_item("collision", r.collision)?;
        d.set_item("offroad", r.offroad)?;
        Ok(d)
    }

    /// The observation buffer, float32 [rows, observation_len]: what reset and step
    /// return, overwritten by every call.
    #[getter]
    fn observations<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        self.obs.bind(py).clone()
    }

    /// World of each row, int64 [rows].
    #[getter]
    fn row_world<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.row_array(py, |i| i.world as i64)
    }

    /// Scene (index into `scenes`) of each row, int64 [rows].
    #[getter]
    fn row_scene<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.row_array(py, |i| i.scene as i64)
    }

    /// Track index (in its scene) of each row's agent, int64 [rows].
    #[getter]
    fn row_track<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.row_array(py, |i| i.track as i64)
    }

    /// Object id of each row's agent, int64 [rows].
    #[getter]
    fn row_object_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.row_array(py, |i| i.object_id)
    }

    /// Vocabulary kind of each row's agent, int8 [rows]: 0 vehicle, 1 pedestrian,
    /// 2 cyclist.
    #[getter]
    fn row_kind<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i8>> {
        self.row_array(py, |i| i.kind.index() as i8)
    }

    /// Whether each row's agent acts at the next decision (not stopped or removed),
    /// bool [rows].
    #[getter]
    fn acting<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_slice(py, self.env.acting())
    }

    /// Starts an episode in every world; returns the observations.
    #[pyo3(signature = (seed=0))]
    fn reset<'py>(&mut self, py: Python<'py>, seed: u64) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let obs = self.obs.clone_ref(py).into_bound(py);
        {
            let mut rw = obs
                .try_readwrite()
                .map_err(|e| value_err(format!("the observation buffer: {e}")))?;
            let out = rw.as_slice_mut().map_err(value_err)?;
            let env = &mut self.env;
            py.detach(|| env.reset(seed, out)).map_err(env_err)?;
        }
        Ok(obs)
    }

    /// Applies one token per row; returns `(observations, rewards, dones, events)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        tokens: PyArrayLike1<'py, i64, AllowTypeChange>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<f32>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray1<u8>>,
    )> {
        let n = self.env.rows();
        let tokens = crate::contiguous(&tokens);
        let (mut rewards, mut dones, mut events) = (vec![0.0f32; n], vec![false; n], vec![0u8; n]);
        let obs = self.obs.clone_ref(py).into_bound(py);
        {
            let mut rw = obs
                .try_readwrite()
                .map_err(|e| value_err(format!("the observation buffer: {e}")))?;
            let out = rw.as_slice_mut().map_err(value_err)?;
            let env = &mut self.env;
            py.detach(|| env.step(&tokens, out, &mut rewards, &mut dones, &mut events))
                .map_err(env_err)?;
        }
        Ok((
            obs,
            PyArray1::from_vec(py, rewards),
            PyArray1::from_vec(py, dones),
            PyArray1::from_vec(py, events),
        ))
    }

    /// The finished episode's rollouts as `SimAgentsChallengeSubmission` bytes: one
    /// `ScenarioRollouts` per scene, its worlds the joint scenes.
    #[pyo3(signature = (method_name=None))]
    fn submission<'py>(
        &self,
        py: Python<'py>,
        method_name: Option<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut s = self.env.submission().map_err(env_err)?;
        s.info.unique_method_name = method_name;
        let bytes = encode_submission(&s).map_err(data_err)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The finished episode's WOSAC scores, one per scene.
    #[pyo3(signature = (config="2025", threads=None))]
    fn score(&self, py: Python<'_>, config: &str, threads: Option<usize>) -> PyResult<Vec<Scores>> {
        let config = crate::wosac::config_of(config)?;
        let env = &self.env;
        let scores = py
            .detach(|| with_threads(threads, || env.score(&config)))?
            .map_err(env_err)?;
        scores.iter().map(|s| Scores::new(py, s)).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Env(scenes={}, worlds={}, rows={}, observation_len={}, actions={}, decision={}/{})",
            self.env.scenes().len(),
            self.env.world_scene().len(),
            self.env.rows(),
            self.env.observation_len(),
            self.env.num_tokens(),
            self.env.decision(),
            self.env.decisions()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Env>()?;
    m.add("HOLD", spacer_train::env::HOLD)?;
    m.add("LOG", spacer_train::env::LOG)?;
    Ok(())
}
