//! The trainer's configuration: a TOML file (every field below; unknown keys are an
//! error), or one of the presets compiled into the binary (`cpu-demo`, `cpu`,
//! `paper`, from `spacer-train/configs/train/`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sim::{CollisionBehaviour, GoalBehaviour, SimConfig};

/// What is optimised (docs/design.md section 1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// PPO with the reference's log-likelihood in the reward (`alpha`) and a KL term
    /// towards the reference in the loss (`beta`).
    Spacer,
    /// Plain PPO on the task reward.
    Ppo,
    /// PPO with a KL term towards a behaviour-cloned policy (HR-PPO).
    HrPpo,
}

impl Method {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Spacer => "spacer",
            Method::Ppo => "ppo",
            Method::HrPpo => "hr-ppo",
        }
    }

    /// The paper's `alpha` (weight of log pi_ref in the reward).
    pub fn default_alpha(self) -> f32 {
        match self {
            Method::Spacer => 0.001,
            Method::Ppo | Method::HrPpo => 0.0,
        }
    }

    /// The paper's `beta` (weight of the KL term: to the reference for SPACeR, to
    /// the cloned policy for HR-PPO).
    pub fn default_beta(self) -> f32 {
        match self {
            Method::Spacer => 0.1,
            Method::Ppo => 0.0,
            Method::HrPpo => 0.01,
        }
    }
}

/// Budget, seed and cadence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Budget in 10 Hz agent-steps (each decision of each controlled agent is two).
    pub agent_steps: u64,
    /// Seed of the initialisation, the scene draws, the rollouts and the minibatches.
    pub seed: u64,
    /// Held-out evaluation every this many updates (and at the end); 0: only at the
    /// end.
    pub eval_every: u64,
    /// Rollouts per held-out scene in those evaluations.
    pub eval_rollouts: usize,
    /// Checkpoint every this many updates (and at the end).
    pub checkpoint_every: u64,
}

/// The environment: the simulator and how worlds are drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// Worlds per batch, each one full episode.
    pub worlds: usize,
    /// Controlled agents per world at most (every vehicle, pedestrian and cyclist
    /// valid at the current step, nearest the self-driving car first).
    pub max_controlled: usize,
    /// Probability that a world is a real training scene (else a synthetic one).
    pub real_fraction: f64,
    /// Draw each real recording equally often.
    pub balance_recordings: bool,
    /// Synthetic training scenes generated for the run.
    pub synthetic: usize,
    /// Goal radius (m).
    pub goal_radius: f32,
    /// Probability that an agent's goal is hidden from its observation for the
    /// episode (the goal reward is still paid).
    pub goal_dropout: f32,
    /// Scale of the boxes used for collisions, road-edge contacts and the
    /// observation (GPUDrive: 0.7). Metrics always use the true boxes.
    pub box_scale: f32,
    /// What happens at the goal: `continue`, `stop` or `remove`.
    pub on_goal: GoalBehaviour,
    /// What happens after a collision or road-edge contact: `ignore`, `stop` or
    /// `remove`.
    pub on_collision: CollisionBehaviourName,
}

/// [`CollisionBehaviour`] by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollisionBehaviourName {
    /// Recorded, the agent carries on.
    Ignore,
    /// The agent freezes.
    Stop,
    /// The agent leaves the scene.
    Remove,
}

impl From<CollisionBehaviourName> for CollisionBehaviour {
    fn from(c: CollisionBehaviourName) -> Self {
        match c {
            CollisionBehaviourName::Ignore => CollisionBehaviour::Ignore,
            CollisionBehaviourName::Stop => CollisionBehaviour::Stop,
            CollisionBehaviourName::Remove => CollisionBehaviour::Remove,
        }
    }
}

/// The reward (computed by the trainer from the simulator's events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSection {
    /// Paid once, at the decision whose steps reach the goal.
    pub goal: f32,
    /// Paid at every decision whose steps hold a collision (negative).
    pub collision: f32,
    /// Paid at every decision whose steps hold a road-edge contact (negative).
    pub offroad: f32,
    /// Weight of log pi_ref(a | s) in the reward; default: the method's.
    #[serde(default)]
    pub alpha: Option<f32>,
    /// Weight of the KL term in the loss; default: the method's.
    #[serde(default)]
    pub beta: Option<f32>,
    /// Temperature applied to the anchor's token distributions before the
    /// likelihood reward and the KL term: `log_softmax(log pi_anchor / T)`. Default
    /// 1 (the anchor as trained, the paper's); below 1 sharpens it, e.g. to the
    /// temperature the reference samples with closed loop.
    #[serde(default)]
    pub anchor_temperature: Option<f32>,
}

/// Which learner runs the updates on the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LearnerKind {
    /// The hand-written forward and backward pass over packed observations
    /// ([`crate::late_fusion::native`]).
    #[default]
    Native,
    /// burn (ndarray on the CPU; always burn on CUDA).
    Burn,
}

/// PPO's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoSection {
    /// Adam learning rate.
    pub lr: f64,
    /// Discount.
    pub gamma: f32,
    /// GAE lambda.
    pub gae_lambda: f32,
    /// Clipping of the probability ratio.
    pub clip: f32,
    /// Weight of the value loss.
    pub vf_coef: f32,
    /// Weight of the entropy bonus.
    pub ent_coef: f32,
    /// Global gradient-norm limit.
    pub max_grad_norm: f32,
    /// Passes over each batch.
    pub epochs: usize,
    /// Samples per minibatch.
    pub minibatch: usize,
    /// Normalise advantages per minibatch.
    pub norm_adv: bool,
    /// The CPU learner.
    #[serde(default)]
    pub learner: LearnerKind,
}

/// A whole training configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// What is optimised.
    pub method: Method,
    /// Budget, seed, cadence.
    pub run: RunSection,
    /// The environment.
    pub env: EnvSection,
    /// The reward.
    pub reward: RewardSection,
    /// PPO.
    pub ppo: PpoSection,
}

/// The presets, by name.
pub const PRESETS: [(&str, &str); 3] = [
    (
        "cpu-demo",
        include_str!("../../configs/train/cpu-demo.toml"),
    ),
    ("cpu", include_str!("../../configs/train/cpu.toml")),
    ("paper", include_str!("../../configs/train/paper.toml")),
];

/// Why a configuration does not load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error(transparent)]
    Data(#[from] crate::error::DataError),
    /// The TOML does not parse or has unknown keys.
    #[error("{origin}: {message}")]
    Parse {
        /// The file or preset.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("{origin}: {field}: {message}")]
    Invalid {
        /// The file or preset.
        origin: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl PpoConfig {
    /// A preset by name, or a TOML file by path.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the field.
    pub fn resolve(name_or_path: &str) -> Result<Self, ConfigError> {
        if let Some((name, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, name);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(ConfigError::Parse {
                origin: name_or_path.to_string(),
                message: format!(
                    "neither a preset ({}) nor a file",
                    PRESETS.map(|p| p.0).join(", ")
                ),
            });
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| crate::error::DataError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] for bad TOML, unknown keys or out-of-range values.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        if text.len() > 1 << 20 {
            return Err(ConfigError::Parse {
                origin: origin.into(),
                message: "larger than 1 MiB".into(),
            });
        }
        let c: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        c.validate(origin)?;
        Ok(c)
    }

    /// `alpha` in effect.
    pub fn alpha(&self) -> f32 {
        self.reward.alpha.unwrap_or(self.method.default_alpha())
    }

    /// `beta` in effect.
    pub fn beta(&self) -> f32 {
        self.reward.beta.unwrap_or(self.method.default_beta())
    }

    /// The anchor temperature in effect (1 unless set).
    pub fn anchor_temperature(&self) -> f32 {
        self.reward.anchor_temperature.unwrap_or(1.0)
    }

    /// Whether the reference model is needed (for the reward or the KL term).
    pub fn needs_reference(&self) -> bool {
        self.method == Method::Spacer && (self.alpha() != 0.0 || self.beta() != 0.0)
    }

    /// Whether a behaviour-cloned policy is needed (HR-PPO's KL term).
    pub fn needs_bc(&self) -> bool {
        self.method == Method::HrPpo && self.beta() != 0.0
    }

    /// The simulator settings of the training worlds.
    pub fn sim(&self) -> SimConfig {
        SimConfig {
            max_controlled: self.env.max_controlled,
            collision_behaviour: self.env.on_collision.into(),
            goal_behaviour: self.env.on_goal,
            box_scale: self.env.box_scale,
            goal_radius: self.env.goal_radius,
            goal_dropout: self.env.goal_dropout,
            ..SimConfig::default()
        }
    }

    /// Checks every value against its documented range.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |field: &str, message: &str| {
            Err(ConfigError::Invalid {
                origin: origin.into(),
                field: field.into(),
                message: message.into(),
            })
        };
        let r = &self.run;
        if r.agent_steps == 0 || r.agent_steps > 1_000_000_000_000 {
            return bad("run.agent_steps", "must be in 1..=1e12");
        }
        if r.eval_rollouts == 0 || r.eval_rollouts > 1024 {
            return bad("run.eval_rollouts", "must be in 1..=1024");
        }
        let e = &self.env;
        if e.worlds == 0 || e.worlds > 100_000 {
            return bad("env.worlds", "must be in 1..=100000");
        }
        if e.max_controlled == 0 || e.max_controlled > 1024 {
            return bad("env.max_controlled", "must be in 1..=1024");
        }
        if !(0.0..=1.0).contains(&e.real_fraction) {
            return bad("env.real_fraction", "must be a probability");
        }
        if e.synthetic > 1_000_000 {
            return bad("env.synthetic", "must be at most 1000000");
        }
        if !(e.goal_radius > 0.0 && e.goal_radius <= 100.0) {
            return bad("env.goal_radius", "must be in (0, 100] m");
        }
        if !(0.0..=1.0).contains(&e.goal_dropout) {
            return bad("env.goal_dropout", "must be a probability");
        }
        if !(e.box_scale > 0.0 && e.box_scale <= 2.0) {
            return bad("env.box_scale", "must be in (0, 2]");
        }
        let w = &self.reward;
        for (f, v) in [
            ("reward.goal", w.goal),
            ("reward.collision", w.collision),
            ("reward.offroad", w.offroad),
        ] {
            if !(v.is_finite() && v.abs() <= 1000.0) {
                return bad(f, "must be finite, at most 1000 in magnitude");
            }
        }
        for (f, v) in [("reward.alpha", self.alpha()), ("reward.beta", self.beta())] {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                return bad(f, "must be in [0, 100]");
            }
        }
        let t = self.anchor_temperature();
        if !(t.is_finite() && (0.05..=20.0).contains(&t)) {
            return bad("reward.anchor_temperature", "must be in [0.05, 20]");
        }
        let p = &self.ppo;
        if !(p.lr > 0.0 && p.lr <= 1.0) {
            return bad("ppo.lr", "must be in (0, 1]");
        }
        for (f, v) in [("ppo.gamma", p.gamma), ("ppo.gae_lambda", p.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(f, "must be in [0, 1]");
            }
        }
        if !(p.clip > 0.0 && p.clip < 10.0) {
            return bad("ppo.clip", "must be in (0, 10)");
        }
        for (f, v) in [("ppo.vf_coef", p.vf_coef), ("ppo.ent_coef", p.ent_coef)] {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                return bad(f, "must be in [0, 100]");
            }
        }
        if !(p.max_grad_norm > 0.0 && p.max_grad_norm.is_finite()) {
            return bad("ppo.max_grad_norm", "must be positive and finite");
        }
        if p.epochs == 0 || p.epochs > 100 {
            return bad("ppo.epochs", "must be in 1..=100");
        }
        if p.minibatch == 0 || p.minibatch > 1 << 22 {
            return bad("ppo.minibatch", "must be in 1..=4194304");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_methods_set_their_weights() {
        for (name, _) in PRESETS {
            let c = PpoConfig::resolve(name).unwrap();
            assert_eq!(c.method, Method::Spacer, "{name}");
            assert_eq!((c.alpha(), c.beta()), (0.001, 0.1));
            assert_eq!(c.ppo.clip, 0.2);
            assert!(c.needs_reference() && !c.needs_bc());
        }
        let paper = PpoConfig::resolve("paper").unwrap();
        assert_eq!((paper.ppo.minibatch, paper.env.worlds), (8192, 300));
        let mut c = PpoConfig::resolve("cpu").unwrap();
        c.method = Method::HrPpo;
        assert_eq!((c.alpha(), c.beta()), (0.0, 0.01));
        assert!(c.needs_bc() && !c.needs_reference());
        c.method = Method::Ppo;
        assert!(!c.needs_bc() && !c.needs_reference());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let text = PRESETS[0]
            .1
            .replace("[ppo]\n", "[ppo]\nlearning_rate = 1.0\n");
        let e = PpoConfig::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("learning_rate"), "{e}");
        let text = PRESETS[0].1.replace("clip = 0.2", "clip = -1.0");
        let e = PpoConfig::parse(&text, "y.toml").unwrap_err().to_string();
        assert!(e.contains("ppo.clip"), "{e}");
        let text = PRESETS[0].1.replace("[reward]\n", "[reward]\nbeta = nan\n");
        let e = PpoConfig::parse(&text, "z.toml").unwrap_err().to_string();
        assert!(e.contains("reward.beta"), "{e}");
        for t in ["0", "-1", "nan", "100"] {
            let text = PRESETS[0].1.replace(
                "[reward]\n",
                &format!("[reward]\nanchor_temperature = {t}\n"),
            );
            let e = PpoConfig::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(e.contains("reward.anchor_temperature"), "{t}: {e}");
        }
        let text = PRESETS[0]
            .1
            .replace("[reward]\n", "[reward]\nanchor_temperature = 0.6\n");
        assert_eq!(
            PpoConfig::parse(&text, "t.toml")
                .unwrap()
                .anchor_temperature(),
            0.6
        );
        assert_eq!(PpoConfig::resolve("cpu").unwrap().anchor_temperature(), 1.0);
        let e = PpoConfig::resolve("no-such-preset")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu-demo"), "{e}");
    }
}
