//! Sim-agent rollouts: the official submission protos and their in-memory form.
//!
//! The Waymo Sim Agents Challenge takes, per scene, 32 joint rollouts of every object
//! valid at the current step: for each object its id and its centre x/y/z and heading
//! at the 80 simulated steps (`SimulatedTrajectory` in a `JointScene` in a
//! `ScenarioRollouts`, bundled in a `SimAgentsChallengeSubmission`; womd/SCHEMA.md).
//! [`proto`] declares these messages by hand with prost's derives (the field numbers of
//! the official `sim_agents_submission.proto`; floats are written packed, as the
//! official files are, and read packed or not). [`ScenarioRollouts`] is the checked,
//! in-memory form that the metrics and the simulator use; [`read_submission`] and
//! [`write_submission`] move between the two and the `.binproto` files.
//!
//! Box sizes, validity and object types are optional in the proto: the official metric
//! code takes sizes and types from the logged scene at the current step and treats
//! every simulated step as valid, and so do the metrics here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;

use super::MetricsError;
use crate::error::{DataError, Location};
use crate::limits::MAX_SUBMISSION_BYTES;
use crate::scenario::{ObjectType, Scene};

/// The wire messages, as in the official `sim_agents_submission.proto`.
pub mod proto {
    /// One object's simulated future.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SimulatedTrajectory {
        /// Box centre x per simulated step (m).
        #[prost(float, repeated, packed = "true", tag = "2")]
        pub center_x: Vec<f32>,
        /// Box centre y per simulated step (m).
        #[prost(float, repeated, packed = "true", tag = "3")]
        pub center_y: Vec<f32>,
        /// Box centre z per simulated step (m).
        #[prost(float, repeated, packed = "true", tag = "4")]
        pub center_z: Vec<f32>,
        /// Heading per simulated step (rad).
        #[prost(float, repeated, packed = "true", tag = "5")]
        pub heading: Vec<f32>,
        /// Box width per step (scenario generation only).
        #[prost(float, repeated, packed = "true", tag = "7")]
        pub width: Vec<f32>,
        /// Box length per step (scenario generation only).
        #[prost(float, repeated, packed = "true", tag = "8")]
        pub length: Vec<f32>,
        /// Box height per step (scenario generation only).
        #[prost(float, repeated, packed = "true", tag = "9")]
        pub height: Vec<f32>,
        /// Validity per step (scenario generation only).
        #[prost(bool, repeated, packed = "true", tag = "11")]
        pub valid: Vec<bool>,
        /// The object's id in the scene.
        #[prost(int32, optional, tag = "6")]
        pub object_id: Option<i32>,
        /// `Track.ObjectType` value.
        #[prost(int32, optional, tag = "10")]
        pub object_type: Option<i32>,
    }

    /// One joint rollout of all simulated objects.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct JointScene {
        /// One trajectory per simulated object.
        #[prost(message, repeated, tag = "1")]
        pub simulated_trajectories: Vec<SimulatedTrajectory>,
    }

    /// All rollouts of one scene.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScenarioRollouts {
        /// The scene's id.
        #[prost(string, optional, tag = "1")]
        pub scenario_id: Option<String>,
        /// The parallel rollouts (32 for the challenge).
        #[prost(message, repeated, tag = "2")]
        pub joint_scenes: Vec<JointScene>,
    }

    /// A challenge submission (one shard).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SimAgentsChallengeSubmission {
        /// The scenes.
        #[prost(message, repeated, tag = "1")]
        pub scenario_rollouts: Vec<ScenarioRollouts>,
        /// `SubmissionType` (1 = `SIM_AGENTS_SUBMISSION`).
        #[prost(int32, optional, tag = "2")]
        pub submission_type: Option<i32>,
        /// Account e-mail.
        #[prost(string, optional, tag = "3")]
        pub account_name: Option<String>,
        /// Method name on the leaderboard.
        #[prost(string, optional, tag = "4")]
        pub unique_method_name: Option<String>,
        /// Authors.
        #[prost(string, repeated, tag = "5")]
        pub authors: Vec<String>,
        /// Affiliation.
        #[prost(string, optional, tag = "6")]
        pub affiliation: Option<String>,
        /// Short description.
        #[prost(string, optional, tag = "7")]
        pub description: Option<String>,
        /// Link to a paper or page.
        #[prost(string, optional, tag = "8")]
        pub method_link: Option<String>,
        /// Uses the lidar data.
        #[prost(bool, optional, tag = "9")]
        pub uses_lidar_data: Option<bool>,
        /// Uses the camera data.
        #[prost(bool, optional, tag = "10")]
        pub uses_camera_data: Option<bool>,
        /// Uses public pre-trained models.
        #[prost(bool, optional, tag = "11")]
        pub uses_public_model_pretraining: Option<bool>,
        /// Parameter count, e.g. `"65K"`.
        #[prost(string, optional, tag = "12")]
        pub num_model_parameters: Option<String>,
        /// Names of public models used.
        #[prost(string, repeated, tag = "13")]
        pub public_model_names: Vec<String>,
        /// Acknowledges the closed-loop rule.
        #[prost(bool, optional, tag = "14")]
        pub acknowledge_complies_with_closed_loop_requirement: Option<bool>,
    }

    /// `SubmissionType.SIM_AGENTS_SUBMISSION`.
    pub const SIM_AGENTS_SUBMISSION: i32 = 1;
}

/// One object's simulated future in one rollout.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatedTrajectory {
    /// The object's id in the scene (`Track::id`).
    pub object_id: i64,
    /// Its type, if the producer said (the metrics take the logged type).
    pub object_type: Option<ObjectType>,
    /// Centre x per simulated step (m).
    pub x: Vec<f32>,
    /// Centre y per simulated step (m).
    pub y: Vec<f32>,
    /// Centre z per simulated step (m).
    pub z: Vec<f32>,
    /// Heading per simulated step (rad).
    pub heading: Vec<f32>,
}

impl SimulatedTrajectory {
    /// Number of simulated steps.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True when there are no steps.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }
}

/// One joint rollout: every simulated object's future.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JointScene {
    /// One trajectory per object.
    pub trajectories: Vec<SimulatedTrajectory>,
}

/// All rollouts of one scene.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioRollouts {
    /// The scene's id.
    pub scenario_id: String,
    /// The rollouts (32 for the challenge).
    pub joint_scenes: Vec<JointScene>,
}

/// The descriptive fields of a submission.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubmissionInfo {
    /// Account e-mail.
    pub account_name: Option<String>,
    /// Method name.
    pub unique_method_name: Option<String>,
    /// Authors.
    pub authors: Vec<String>,
    /// Affiliation.
    pub affiliation: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Link.
    pub method_link: Option<String>,
    /// Uses lidar.
    pub uses_lidar_data: Option<bool>,
    /// Uses cameras.
    pub uses_camera_data: Option<bool>,
    /// Uses public pre-trained models.
    pub uses_public_model_pretraining: Option<bool>,
    /// Names of public models used.
    pub public_model_names: Vec<String>,
    /// Parameter count, e.g. `"65K"`.
    pub num_model_parameters: Option<String>,
    /// Acknowledges the closed-loop rule.
    pub acknowledge_complies_with_closed_loop_requirement: Option<bool>,
}

/// A whole submission: the scenes' rollouts and the descriptive fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Submission {
    /// One entry per scene.
    pub scenario_rollouts: Vec<ScenarioRollouts>,
    /// Method description.
    pub info: SubmissionInfo,
}

impl ScenarioRollouts {
    /// One rollout that replays the logged future of every object valid at the current
    /// step, copying states whatever their validity (the official
    /// `scenario_to_joint_scene`): scoring it measures how the log scores against
    /// itself.
    pub fn logged(scene: &Scene) -> Self {
        let c = scene.current_step;
        let trajectories = scene
            .tracks
            .iter()
            .filter(|t| t.valid_at(c))
            .map(|t| {
                let fut = t.states.get(c + 1..).unwrap_or(&[]);
                SimulatedTrajectory {
                    object_id: t.id,
                    object_type: Some(t.object_type),
                    x: fut.iter().map(|s| s.x).collect(),
                    y: fut.iter().map(|s| s.y).collect(),
                    z: fut.iter().map(|s| s.z).collect(),
                    heading: fut.iter().map(|s| s.heading).collect(),
                }
            })
            .collect();
        Self {
            scenario_id: scene.id.clone(),
            joint_scenes: vec![JointScene { trajectories }],
        }
    }

    /// Rollouts from flat arrays, as a Python or C caller holds them: `object_ids`
    /// (`n_objects`) and `x`, `y`, `z`, `heading`, each `[n_rollouts][n_objects][n_steps]`
    /// row-major (`n_steps` simulated steps per trajectory, 80 for WOMD). Nothing is
    /// checked against a scene here: the metrics do that.
    ///
    /// # Errors
    /// [`MetricsError::Rollouts`] naming the array whose length is not
    /// `n_rollouts * object_ids.len() * n_steps`, or when there are no rollouts, objects
    /// or steps.
    pub fn from_arrays(
        scenario_id: &str,
        object_ids: &[i64],
        n_steps: usize,
        x: &[f32],
        y: &[f32],
        z: &[f32],
        heading: &[f32],
    ) -> Result<Self, MetricsError> {
        let bad = |message: String| MetricsError::Rollouts {
            scenario_id: scenario_id.to_string(),
            message,
        };
        let n_objects = object_ids.len();
        if n_objects == 0 || n_steps == 0 {
            return Err(bad(format!(
                "no trajectories: {n_objects} objects of {n_steps} steps"
            )));
        }
        let per_rollout = n_objects * n_steps;
        let n_rollouts = x.len() / per_rollout;
        if n_rollouts == 0 {
            return Err(bad(format!(
                "x holds {} values, less than one rollout of {n_objects} objects x {n_steps} steps",
                x.len()
            )));
        }
        for (name, a) in [("x", x), ("y", y), ("z", z), ("heading", heading)] {
            if a.len() != n_rollouts * per_rollout {
                return Err(bad(format!(
                    "{name} holds {} values, not {n_rollouts} rollouts x {n_objects} objects x \
                     {n_steps} steps",
                    a.len()
                )));
            }
        }
        let joint_scenes = (0..n_rollouts)
            .map(|r| JointScene {
                trajectories: object_ids
                    .iter()
                    .enumerate()
                    .map(|(o, &object_id)| {
                        let span = (r * n_objects + o) * n_steps..(r * n_objects + o + 1) * n_steps;
                        SimulatedTrajectory {
                            object_id,
                            object_type: None,
                            x: x[span.clone()].to_vec(),
                            y: y[span.clone()].to_vec(),
                            z: z[span.clone()].to_vec(),
                            heading: heading[span].to_vec(),
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(Self {
            scenario_id: scenario_id.to_string(),
            joint_scenes,
        })
    }

    /// Checks and converts a decoded proto. `path` and `record` name it in errors.
    ///
    /// # Errors
    /// [`DataError::Invalid`] for a missing scenario id or object id, coordinate arrays
    /// of different lengths, or an unknown object type.
    pub fn from_proto(
        p: proto::ScenarioRollouts,
        path: &Path,
        record: usize,
    ) -> Result<Self, DataError> {
        let scenario_id = p.scenario_id.ok_or_else(|| {
            DataError::invalid(
                path,
                Location::field(Some(record), "scenario_id"),
                "missing",
            )
        })?;
        let mut joint_scenes = Vec::with_capacity(p.joint_scenes.len());
        for (r, js) in p.joint_scenes.into_iter().enumerate() {
            let mut trajectories = Vec::with_capacity(js.simulated_trajectories.len());
            for (k, t) in js.simulated_trajectories.into_iter().enumerate() {
                let field = |name: &str| {
                    Location::field(
                        Some(record),
                        format!("joint_scenes[{r}].simulated_trajectories[{k}]{name}"),
                    )
                };
                let object_id = t
                    .object_id
                    .ok_or_else(|| DataError::invalid(path, field(".object_id"), "missing"))?;
                let n = t.center_x.len();
                for (name, len) in [
                    ("center_y", t.center_y.len()),
                    ("center_z", t.center_z.len()),
                    ("heading", t.heading.len()),
                ] {
                    if len != n {
                        return Err(DataError::invalid(
                            path,
                            field(&format!(".{name}")),
                            format!("{len} values, but center_x has {n}"),
                        ));
                    }
                }
                let object_type = match t.object_type {
                    None => None,
                    Some(v @ 0..=4) => Some(ObjectType::from_proto(v)),
                    Some(v) => {
                        return Err(DataError::invalid(
                            path,
                            field(".object_type"),
                            format!("unknown object type {v}"),
                        ));
                    }
                };
                trajectories.push(SimulatedTrajectory {
                    object_id: i64::from(object_id),
                    object_type,
                    x: t.center_x,
                    y: t.center_y,
                    z: t.center_z,
                    heading: t.heading,
                });
            }
            joint_scenes.push(JointScene { trajectories });
        }
        Ok(Self {
            scenario_id,
            joint_scenes,
        })
    }

    /// The wire form.
    ///
    /// # Errors
    /// When an object id does not fit the proto's `int32`.
    pub fn to_proto(&self) -> Result<proto::ScenarioRollouts, std::num::TryFromIntError> {
        let mut joint_scenes = Vec::with_capacity(self.joint_scenes.len());
        for js in &self.joint_scenes {
            let mut simulated_trajectories = Vec::with_capacity(js.trajectories.len());
            for t in &js.trajectories {
                simulated_trajectories.push(proto::SimulatedTrajectory {
                    center_x: t.x.clone(),
                    center_y: t.y.clone(),
                    center_z: t.z.clone(),
                    heading: t.heading.clone(),
                    object_id: Some(i32::try_from(t.object_id)?),
                    object_type: t.object_type.map(ObjectType::proto_value),
                    ..Default::default()
                });
            }
            joint_scenes.push(proto::JointScene {
                simulated_trajectories,
            });
        }
        Ok(proto::ScenarioRollouts {
            scenario_id: Some(self.scenario_id.clone()),
            joint_scenes,
        })
    }
}

impl Submission {
    /// Checks and converts a decoded submission proto.
    ///
    /// # Errors
    /// As [`ScenarioRollouts::from_proto`], with `record` the scene's index; a scene
    /// that appears twice (it would be scored, and averaged, as two scenes).
    pub fn from_proto(
        p: proto::SimAgentsChallengeSubmission,
        path: &Path,
    ) -> Result<Self, DataError> {
        let mut first: std::collections::HashMap<String, usize> = Default::default();
        for (i, r) in p.scenario_rollouts.iter().enumerate() {
            let Some(id) = &r.scenario_id else { continue };
            if let Some(&j) = first.get(id) {
                return Err(DataError::invalid(
                    path,
                    Location::field(Some(i), "scenario_id"),
                    format!(
                        "scene {} already has rollouts in record {j}; a submission holds each scene once",
                        crate::limits::quote(id)
                    ),
                ));
            }
            first.insert(id.clone(), i);
        }
        let scenario_rollouts = p
            .scenario_rollouts
            .into_iter()
            .enumerate()
            .map(|(i, r)| ScenarioRollouts::from_proto(r, path, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            scenario_rollouts,
            info: SubmissionInfo {
                account_name: p.account_name,
                unique_method_name: p.unique_method_name,
                authors: p.authors,
                affiliation: p.affiliation,
                description: p.description,
                method_link: p.method_link,
                uses_lidar_data: p.uses_lidar_data,
                uses_camera_data: p.uses_camera_data,
                uses_public_model_pretraining: p.uses_public_model_pretraining,
                public_model_names: p.public_model_names,
                num_model_parameters: p.num_model_parameters,
                acknowledge_complies_with_closed_loop_requirement: p
                    .acknowledge_complies_with_closed_loop_requirement,
            },
        })
    }

    /// The wire form (`submission_type` set to `SIM_AGENTS_SUBMISSION`).
    ///
    /// # Errors
    /// When an object id does not fit the proto's `int32`.
    pub fn to_proto(
        &self,
    ) -> Result<proto::SimAgentsChallengeSubmission, std::num::TryFromIntError> {
        let i = &self.info;
        Ok(proto::SimAgentsChallengeSubmission {
            scenario_rollouts: self
                .scenario_rollouts
                .iter()
                .map(ScenarioRollouts::to_proto)
                .collect::<Result<Vec<_>, _>>()?,
            submission_type: Some(proto::SIM_AGENTS_SUBMISSION),
            account_name: i.account_name.clone(),
            unique_method_name: i.unique_method_name.clone(),
            authors: i.authors.clone(),
            affiliation: i.affiliation.clone(),
            description: i.description.clone(),
            method_link: i.method_link.clone(),
            uses_lidar_data: i.uses_lidar_data,
            uses_camera_data: i.uses_camera_data,
            uses_public_model_pretraining: i.uses_public_model_pretraining,
            num_model_parameters: i.num_model_parameters.clone(),
            public_model_names: i.public_model_names.clone(),
            acknowledge_complies_with_closed_loop_requirement: i
                .acknowledge_complies_with_closed_loop_requirement,
        })
    }

    /// The rollouts of scene `scenario_id`, if present.
    pub fn scenario(&self, scenario_id: &str) -> Option<&ScenarioRollouts> {
        self.scenario_rollouts
            .iter()
            .find(|r| r.scenario_id == scenario_id)
    }
}

/// Decodes a `.binproto` file's bytes: a `SimAgentsChallengeSubmission` (the official
/// submission shard), or a bare `ScenarioRollouts` message.
///
/// # Errors
/// [`DataError::Invalid`] naming `path` when the bytes are neither, or the content is
/// inconsistent, or longer than [`MAX_SUBMISSION_BYTES`].
pub fn decode_submission(bytes: &[u8], path: &Path) -> Result<Submission, DataError> {
    if bytes.len() as u64 > MAX_SUBMISSION_BYTES {
        return Err(DataError::invalid(
            path,
            Location::file(),
            format!(
                "{} bytes exceed the {MAX_SUBMISSION_BYTES}-byte limit of a protobuf message",
                bytes.len()
            ),
        ));
    }
    match proto::SimAgentsChallengeSubmission::decode(bytes) {
        Ok(p) if !p.scenario_rollouts.is_empty() || bytes.is_empty() => {
            Submission::from_proto(p, path)
        }
        first => {
            // A bare `ScenarioRollouts` does not decode as a submission (its field 2 is
            // a message, the submission's an enum), or decodes to nothing useful.
            match proto::ScenarioRollouts::decode(bytes) {
                Ok(r) if r.scenario_id.is_some() => Ok(Submission {
                    scenario_rollouts: vec![ScenarioRollouts::from_proto(r, path, 0)?],
                    info: SubmissionInfo::default(),
                }),
                _ => Err(DataError::invalid(
                    path,
                    Location::file(),
                    match first {
                        Err(e) => format!(
                            "not a SimAgentsChallengeSubmission or ScenarioRollouts protobuf: {e}"
                        ),
                        Ok(_) => "a submission without any scenario_rollouts".to_string(),
                    },
                )),
            }
        }
    }
}

/// Reads a `.binproto` submission (or bare `ScenarioRollouts`) file.
///
/// # Errors
/// [`DataError`] naming the file.
pub fn read_submission(path: &Path) -> Result<Submission, DataError> {
    let bytes = crate::limits::read_bounded(path, MAX_SUBMISSION_BYTES, "submission")?;
    decode_submission(&bytes, path)
}

/// Reads a submission split into shards (the official format ships one submission
/// as many `.binproto` files, each a `SimAgentsChallengeSubmission` holding some of
/// the scenes): the scenes of all shards, in shard order, and the descriptive fields
/// of the first shard that has any.
///
/// # Errors
/// [`DataError`] naming the shard that cannot be read, or the second shard holding a
/// scene that an earlier one already held; [`DataError::Invalid`] for no path.
pub fn read_submission_shards(paths: &[PathBuf]) -> Result<Submission, DataError> {
    let first = paths.first().ok_or_else(|| {
        DataError::invalid(
            Path::new("<submission>"),
            Location::file(),
            "no shard given",
        )
    })?;
    let mut merged = read_submission(first)?;
    let mut seen: HashMap<String, usize> = merged
        .scenario_rollouts
        .iter()
        .map(|r| (r.scenario_id.clone(), 0))
        .collect();
    for (k, path) in paths.iter().enumerate().skip(1) {
        let shard = read_submission(path)?;
        for (i, r) in shard.scenario_rollouts.into_iter().enumerate() {
            if let Some(&earlier) = seen.get(&r.scenario_id) {
                return Err(DataError::invalid(
                    path,
                    Location::field(Some(i), "scenario_id"),
                    format!(
                        "scene {} is also in shard {}",
                        r.scenario_id,
                        paths[earlier].display()
                    ),
                ));
            }
            seen.insert(r.scenario_id.clone(), k);
            merged.scenario_rollouts.push(r);
        }
        if merged.info == SubmissionInfo::default() {
            merged.info = shard.info;
        }
    }
    Ok(merged)
}

/// The `.binproto` bytes of a submission (`submission_type` set).
///
/// # Errors
/// [`DataError::Invalid`] when an object id does not fit the proto's `int32`.
pub fn encode_submission(submission: &Submission) -> Result<Vec<u8>, DataError> {
    let p = submission.to_proto().map_err(|_| {
        DataError::invalid(
            Path::new("<submission>"),
            Location::field(None, "simulated_trajectories.object_id"),
            "an object id does not fit the proto's int32",
        )
    })?;
    Ok(p.encode_to_vec())
}

/// Writes a submission as one `.binproto` file, atomically.
///
/// # Errors
/// [`DataError`] naming the file (including object ids beyond `int32`).
pub fn write_submission(path: &Path, submission: &Submission) -> Result<(), DataError> {
    let p = submission.to_proto().map_err(|_| {
        DataError::invalid(
            path,
            Location::field(None, "simulated_trajectories.object_id"),
            "an object id does not fit the proto's int32",
        )
    })?;
    crate::fsutil::write_atomic(path, &p.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> std::path::PathBuf {
        crate::paths::shared_data("wosac/637f20cafde22ff8_constvel_submission.binproto")
    }

    #[test]
    fn reads_the_shipped_constant_velocity_submission() {
        let s = read_submission(&shipped()).unwrap();
        assert_eq!(s.scenario_rollouts.len(), 1);
        let r = &s.scenario_rollouts[0];
        assert_eq!(r.scenario_id, "637f20cafde22ff8");
        assert_eq!(r.joint_scenes.len(), 32);
        for js in &r.joint_scenes {
            assert_eq!(js.trajectories.len(), 50);
            assert!(js.trajectories.iter().all(|t| t.len() == 80));
        }
        let first = &r.joint_scenes[0].trajectories[0];
        assert_eq!(first.object_id, 1580);
        assert_eq!(first.x[0], -7792.2217);
        assert!(s.scenario("637f20cafde22ff8").is_some());
        assert!(s.scenario("nope").is_none());
    }

    #[test]
    fn round_trips_through_the_wire_bytes() {
        let s = read_submission(&shipped()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("again.binproto");
        let mut s2 = s.clone();
        s2.info.unique_method_name = Some("constant velocity".into());
        s2.info.authors = vec!["a".into(), "b".into()];
        write_submission(&out, &s2).unwrap();
        let back = read_submission(&out).unwrap();
        assert_eq!(back, s2);
        assert_eq!(back.scenario_rollouts, s.scenario_rollouts);
        // A bare ScenarioRollouts message reads too.
        let bare = s.scenario_rollouts[0].to_proto().unwrap().encode_to_vec();
        let one = decode_submission(&bare, Path::new("bare.binproto")).unwrap();
        assert_eq!(one.scenario_rollouts, s.scenario_rollouts);
    }

    #[test]
    fn arrays_give_the_same_rollouts_as_the_submission() {
        let s = read_submission(&shipped()).unwrap();
        let r = &s.scenario_rollouts[0];
        let ids: Vec<i64> = r.joint_scenes[0]
            .trajectories
            .iter()
            .map(|t| t.object_id)
            .collect();
        let flat = |f: fn(&SimulatedTrajectory) -> &Vec<f32>| -> Vec<f32> {
            r.joint_scenes
                .iter()
                .flat_map(|js| js.trajectories.iter().flat_map(|t| f(t).iter().copied()))
                .collect()
        };
        let (x, y, z, h) = (
            flat(|t| &t.x),
            flat(|t| &t.y),
            flat(|t| &t.z),
            flat(|t| &t.heading),
        );
        let a = ScenarioRollouts::from_arrays(&r.scenario_id, &ids, 80, &x, &y, &z, &h).unwrap();
        assert_eq!(a.joint_scenes.len(), 32);
        for (js, want) in a.joint_scenes.iter().zip(&r.joint_scenes) {
            for (t, w) in js.trajectories.iter().zip(&want.trajectories) {
                assert_eq!(
                    (t.object_id, &t.x, &t.y, &t.z, &t.heading),
                    (w.object_id, &w.x, &w.y, &w.z, &w.heading)
                );
            }
        }
        // Wrong lengths and empty inputs are named.
        let e = ScenarioRollouts::from_arrays("s", &ids, 80, &x, &y, &z[1..], &h).unwrap_err();
        assert!(e.to_string().contains("z holds"), "{e}");
        let e = ScenarioRollouts::from_arrays("s", &ids, 80, &x[..10], &y, &z, &h).unwrap_err();
        assert!(e.to_string().contains("less than one rollout"), "{e}");
        let e = ScenarioRollouts::from_arrays("s", &[], 80, &x, &y, &z, &h).unwrap_err();
        assert!(e.to_string().contains("no trajectories"), "{e}");
    }

    #[test]
    fn shards_merge_and_a_scene_in_two_shards_is_refused() {
        let s = read_submission(&shipped()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut a = s.clone();
        a.scenario_rollouts[0].scenario_id = "first".into();
        a.info.unique_method_name = Some("cv".into());
        let mut b = s.clone();
        b.scenario_rollouts[0].scenario_id = "second".into();
        b.scenario_rollouts.push(s.scenario_rollouts[0].clone());
        let (pa, pb) = (
            dir.path().join("a-00000-of-00002"),
            dir.path().join("b-00001-of-00002"),
        );
        std::fs::write(&pa, encode_submission(&a).unwrap()).unwrap();
        write_submission(&pb, &b).unwrap();
        let m = read_submission_shards(&[pa.clone(), pb.clone()]).unwrap();
        let ids: Vec<&str> = m
            .scenario_rollouts
            .iter()
            .map(|r| r.scenario_id.as_str())
            .collect();
        assert_eq!(ids, ["first", "second", "637f20cafde22ff8"]);
        assert_eq!(m.info.unique_method_name.as_deref(), Some("cv"));
        assert_eq!(
            read_submission_shards(std::slice::from_ref(&pa)).unwrap(),
            a
        );
        let e = read_submission_shards(&[pa.clone(), pb.clone(), pb.clone()]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("scene second is also in shard") && msg.contains("b-00001"),
            "{msg}"
        );
        assert!(read_submission_shards(&[]).is_err());
        let e = read_submission_shards(&[pa, dir.path().join("missing")]).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn unpacked_floats_decode_too() {
        // center_x = 2 written unpacked (fixed32 per element), object_id = 6.
        let mut traj = Vec::new();
        for v in [1.5f32, -2.0] {
            traj.push((2 << 3) | 5);
            traj.extend_from_slice(&v.to_le_bytes());
        }
        for tag in [3u8, 4, 5] {
            for v in [0.0f32, 0.0] {
                traj.push((tag << 3) | 5);
                traj.extend_from_slice(&v.to_le_bytes());
            }
        }
        traj.extend_from_slice(&[6 << 3, 7]);
        let t = proto::SimulatedTrajectory::decode(&traj[..]).unwrap();
        assert_eq!(t.center_x, vec![1.5, -2.0]);
        assert_eq!(t.object_id, Some(7));
    }

    #[test]
    fn inconsistent_content_is_an_error_naming_the_field() {
        let mut p = read_submission(&shipped()).unwrap().to_proto().unwrap();
        p.scenario_rollouts[0].joint_scenes[3].simulated_trajectories[5]
            .heading
            .pop();
        let e = Submission::from_proto(p.clone(), Path::new("s.binproto")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("joint_scenes[3].simulated_trajectories[5].heading"),
            "{msg}"
        );
        p.scenario_rollouts[0].joint_scenes[0].simulated_trajectories[0].object_id = None;
        let e = Submission::from_proto(p, Path::new("s.binproto")).unwrap_err();
        assert!(e.to_string().contains("object_id"));
        let e = decode_submission(b"\xff\xff\xff", Path::new("junk.binproto")).unwrap_err();
        assert!(e.to_string().starts_with("junk.binproto"));
    }

    #[test]
    fn a_scene_twice_in_one_submission_is_an_error() {
        // It used to be scored as two scenes and averaged.
        let mut p = read_submission(&shipped()).unwrap().to_proto().unwrap();
        p.scenario_rollouts.push(p.scenario_rollouts[0].clone());
        let e = decode_submission(&p.encode_to_vec(), Path::new("twice.binproto"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("twice.binproto, record 1, field scenario_id")
                && e.contains("637f20cafde22ff8")
                && e.contains("record 0"),
            "{e}"
        );
    }
}
