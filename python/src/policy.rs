//! `Policy`: a weights blob and spacer-core's forward pass over observation arrays.

use std::path::{Path, PathBuf};

use numpy::{AllowTypeChange, PyArray1, PyArrayLikeDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;
use spacer_core::math::Rng;
use spacer_core::policy::{Selection, select};
use spacer_core::tokenizer::Vocabulary;
use spacer_train::policy_file::PolicyFile;
use spacer_train::sim::derive_seed;

use crate::{data_err, value_err};

/// Rows per parallel task of the forward pass.
const CHUNK: usize = 32;

/// The decentralized policy of a weights blob (the late-fusion network, its token
/// vocabulary and observation layout), run by spacer-core's forward pass: the same
/// function the simulator, the C ABI and the firmware run.
#[pyclass(frozen, module = "spacer")]
pub struct Policy {
    pub(crate) file: PolicyFile,
}

/// Observations as `[n, obs_len]` (a 1-D array is one observation).
struct Obs<'py> {
    array: numpy::PyReadonlyArrayDyn<'py, f32>,
    rows: usize,
    single: bool,
}

impl Policy {
    fn obs<'py>(&self, obs: &Bound<'py, PyAny>) -> PyResult<Obs<'py>> {
        let a = obs
            .extract::<PyArrayLikeDyn<'py, f32, AllowTypeChange>>()
            .map_err(|e| PyValueError::new_err(format!("observations must be a float array: {e}")))?
            .readonly();
        let d = self.file.model().policy.observation_len();
        let shape = a.shape().to_vec();
        let (rows, single) = match shape.as_slice() {
            [n] if *n == d => (1, true),
            [r, n] if *n == d => (*r, false),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "observations must be [n, {d}] (or one [{d}]); got shape {}",
                    crate::shape_str(&shape)
                )));
            }
        };
        Ok(Obs {
            array: a,
            rows,
            single,
        })
    }

    /// Logits `[rows][K]` and values `[rows]`, without the GIL, in parallel.
    fn run(&self, py: Python<'_>, obs: &Obs<'_>) -> PyResult<(Vec<f32>, Vec<f32>)> {
        let flat = crate::contiguous(&obs.array);
        let model = self.file.model();
        let (d, k) = (model.policy.observation_len(), model.policy.actions());
        let mut logits = vec![0.0f32; obs.rows * k];
        let mut values = vec![0.0f32; obs.rows];
        py.detach(|| {
            flat.par_chunks(d * CHUNK)
                .zip(logits.par_chunks_mut(k * CHUNK))
                .zip(values.par_chunks_mut(CHUNK))
                .try_for_each(|((o, l), v)| model.policy.forward_batch(o, l, v))
        })
        .map_err(|e| value_err(format!("policy forward pass: {e}")))?;
        Ok((logits, values))
    }
}

#[pymethods]
impl Policy {
    /// Reads and validates a weights blob (`.spw`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let file = py.detach(|| PolicyFile::read(&path)).map_err(data_err)?;
        Ok(Self { file })
    }

    /// Validates a weights blob held in memory.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let file = PolicyFile::from_bytes(data, Path::new("<bytes>")).map_err(data_err)?;
        Ok(Self { file })
    }

    /// The deterministic initialisation (orthogonal, untrained) for `seed`, with the
    /// kinematic-grid vocabulary of 200 tokens or a vocabulary file.
    #[staticmethod]
    #[pyo3(signature = (seed=1, vocabulary=None))]
    fn initial(seed: u64, vocabulary: Option<PathBuf>) -> PyResult<Self> {
        let vocab = spacer_train::vocab::read_or_grid(vocabulary.as_deref()).map_err(data_err)?;
        Ok(Self {
            file: PolicyFile::initial(&vocab, seed),
        })
    }

    /// Writes the blob to `path`, atomically.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.file.write(&path).map_err(data_err)
    }

    /// The blob's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.file.bytes())
    }

    /// Tokens per agent kind (the action count K).
    #[getter]
    fn num_actions(&self) -> usize {
        self.file.model().policy.actions()
    }

    /// Floats per observation.
    #[getter]
    fn observation_len(&self) -> usize {
        self.file.model().policy.observation_len()
    }

    /// Parameters of the network.
    #[getter]
    fn num_parameters(&self) -> usize {
        self.file.params().len()
    }

    /// The observation radius it was trained with (m).
    #[getter]
    fn observation_radius(&self) -> f32 {
        self.file.model().observation.radius
    }

    /// Partner slots of its observation.
    #[getter]
    fn max_partners(&self) -> usize {
        self.file.model().observation.max_partners
    }

    /// Road-segment slots of its observation.
    #[getter]
    fn max_road_segments(&self) -> usize {
        self.file.model().observation.max_road_segments
    }

    /// Environment steps of training behind the weights (0 for an initialisation).
    #[getter]
    fn trained_steps(&self) -> u64 {
        self.file.model().header.trained_steps
    }

    /// Token motions, float32 [3, K, 2, 3]: per kind (vehicle, pedestrian, cyclist)
    /// and token, the agent-frame pose (x, y, yaw) after 0.1 s and 0.2 s.
    #[getter]
    fn tokens<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.file.model().tokens;
        let k = t.len();
        let mut v = Vec::with_capacity(3 * k * 6);
        for kind in spacer_core::agent::AgentKind::ALL {
            for i in 0..k {
                let tok = t
                    .get(kind, i)
                    .unwrap_or(spacer_core::tokenizer::Token::STILL);
                for p in tok.poses {
                    v.extend_from_slice(&[p.x, p.y, p.yaw]);
                }
            }
        }
        Ok(PyArray1::from_vec(py, v).reshape([3, k, 2, 3])?.into_any())
    }

    /// `(logits, values)`: float32 [n, K] and [n] for observations [n, obs_len] (or
    /// [K] and a float for one observation [obs_len]).
    fn forward<'py>(
        &self,
        py: Python<'py>,
        obs: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let o = self.obs(obs)?;
        let (logits, values) = self.run(py, &o)?;
        let k = self.num_actions();
        if o.single {
            return Ok((
                PyArray1::from_vec(py, logits).into_any(),
                values[0].into_pyobject(py)?.into_any(),
            ));
        }
        Ok((
            PyArray1::from_vec(py, logits)
                .reshape([o.rows, k])?
                .into_any(),
            PyArray1::from_vec(py, values).into_any(),
        ))
    }

    /// Logits, float32 [n, K] (or [K] for one observation).
    fn logits<'py>(&self, py: Python<'py>, obs: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.forward(py, obs)?.0)
    }

    /// Tokens, int64 [n] (or an int for one observation): the most likely
    /// (`temperature=0`), or drawn from softmax(logits / temperature) over the
    /// `top_k` most likely (0: all), row `i` with a generator seeded from
    /// `(seed, i)`.
    #[pyo3(signature = (obs, temperature=0.0, top_k=0, seed=0))]
    fn act<'py>(
        &self,
        py: Python<'py>,
        obs: &Bound<'py, PyAny>,
        temperature: f32,
        top_k: u16,
        seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(PyValueError::new_err(
                "temperature must be 0 (the most likely token) or positive",
            ));
        }
        let selection = if temperature > 0.0 {
            Selection::Sample { temperature, top_k }
        } else {
            Selection::Argmax
        };
        let o = self.obs(obs)?;
        let (logits, _) = self.run(py, &o)?;
        let k = self.num_actions();
        let tokens = py
            .detach(|| {
                logits
                    .par_chunks(k)
                    .enumerate()
                    .map(|(i, l)| {
                        let mut rng = Rng::new(derive_seed(seed, &[i as u64]));
                        select(l, selection, &mut rng).map(i64::from)
                    })
                    .collect::<Result<Vec<i64>, _>>()
            })
            .map_err(value_err)?;
        if o.single {
            return Ok(tokens[0].into_pyobject(py)?.into_any());
        }
        Ok(PyArray1::from_vec(py, tokens).into_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "Policy(origin={:?}, parameters={}, actions={}, observation_len={})",
            self.file.origin().display().to_string(),
            self.file.params().len(),
            self.num_actions(),
            self.observation_len()
        )
    }
}

impl Policy {
    /// The vocabulary its tokens form.
    pub(crate) fn vocabulary(&self) -> PyResult<Vocabulary> {
        self.file
            .model()
            .tokens
            .to_vocabulary()
            .map_err(|e| value_err(format!("the policy's vocabulary: {e}")))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Policy>()?;
    Ok(())
}
