//! The one registry of sim agents: every agent a command line can name, parsed from
//! `[NAME=]SPEC` and built into a [`SimAgent`].
//!
//! | spec | agent |
//! |---|---|
//! | `log` | [`LogReplay`]: the logged future |
//! | `const-vel` | [`ConstantVelocity`] from the last logged state |
//! | `logged-tokens` | [`LoggedTokens`]: the log tokenized and replayed (the vocabulary's own error) |
//! | `random` | [`RandomTokens`] |
//! | `policy` | the deterministic initialisation of the policy (untrained) |
//! | `policy:FILE` | the policy of a weights blob ([`PolicyAgent`]) |
//! | `ref:CKPT` | a reference model checkpoint ([`ReferenceAgent`]), sampling with its stored defaults |
//!
//! `NAME=` names the agent in tables, charts and file names (default: the spec
//! itself, or for `policy:FILE` / `ref:CKPT` the file's stem), so that several blobs
//! or checkpoints can be compared in one run: `--agents spacer=policy:a.spw,ppo=policy:b.spw`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use spacer_core::policy::Selection;
use spacer_core::tokenizer::Vocabulary;

use crate::error::DataError;
use crate::policy_file::PolicyFile;
use crate::reference::Sampling;
use crate::reference::agent::ReferenceAgent;
use crate::sim::{ConstantVelocity, LogReplay, LoggedTokens, PolicyAgent, RandomTokens, SimAgent};
use crate::training::Cpu;

/// What drives the agents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AgentSource {
    /// Log replay.
    Log,
    /// Constant velocity.
    ConstantVelocity,
    /// The log tokenized and replayed.
    LoggedTokens,
    /// Uniformly random tokens.
    Random,
    /// The policy's deterministic initialisation.
    InitialPolicy,
    /// The policy of a weights blob.
    Policy(PathBuf),
    /// A reference model checkpoint.
    Reference(PathBuf),
}

/// A named sim agent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AgentSpec {
    /// Its name in reports.
    pub name: String,
    /// What drives it.
    pub source: AgentSource,
}

/// Why a spec does not parse or an agent cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not a known spec.
    #[error(
        "unknown sim agent {0:?}: one of log, const-vel, logged-tokens, random, policy, \
         policy:FILE, ref:CKPT (optionally NAME=...)"
    )]
    Unknown(String),
    /// A file argument is missing.
    #[error("sim agent {0:?} needs a file after the colon")]
    MissingFile(String),
    /// The blob or checkpoint does not load.
    #[error(transparent)]
    Data(#[from] DataError),
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl FromStr for AgentSpec {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, spec) = match s.split_once('=') {
            Some((n, rest)) if !n.is_empty() && !n.contains(':') => (Some(n.to_string()), rest),
            _ => (None, s),
        };
        let file = |rest: &str| -> Result<PathBuf, RegistryError> {
            if rest.is_empty() {
                Err(RegistryError::MissingFile(s.to_string()))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        let source = match spec.split_once(':') {
            Some(("policy", rest)) => AgentSource::Policy(file(rest)?),
            Some(("ref", rest)) => AgentSource::Reference(file(rest)?),
            Some(_) => return Err(RegistryError::Unknown(s.to_string())),
            None => match spec {
                "log" => AgentSource::Log,
                "const-vel" => AgentSource::ConstantVelocity,
                "logged-tokens" => AgentSource::LoggedTokens,
                "random" => AgentSource::Random,
                "policy" => AgentSource::InitialPolicy,
                _ => return Err(RegistryError::Unknown(s.to_string())),
            },
        };
        let name = name.unwrap_or_else(|| match &source {
            AgentSource::Policy(p) => format!("policy:{}", stem(p)),
            AgentSource::Reference(p) => format!("ref:{}", stem(p)),
            _ => spec.to_string(),
        });
        Ok(Self { name, source })
    }
}

impl fmt::Display for AgentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Settings shared by the agents a registry builds.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The vocabulary of `logged-tokens`, `random` and the initial policy.
    pub vocabulary: Vocabulary,
    /// How policies pick tokens.
    pub policy_selection: Selection,
    /// How `ref:` agents sample; `None`: each checkpoint's stored defaults.
    pub ref_sampling: Option<Sampling>,
}

impl AgentOptions {
    /// Token agents over `vocabulary`, policies sampling at temperature 1 from every
    /// token, `ref:` agents with their stored defaults.
    pub fn new(vocabulary: Vocabulary) -> Self {
        Self {
            vocabulary,
            policy_selection: Selection::Sample {
                temperature: 1.0,
                top_k: 0,
            },
            ref_sampling: None,
        }
    }
}

impl AgentSpec {
    /// Builds the agent, seeded.
    ///
    /// # Errors
    /// [`RegistryError::Data`] when a blob or checkpoint does not load.
    pub fn build(
        &self,
        options: &AgentOptions,
        seed: u64,
    ) -> Result<Box<dyn SimAgent>, RegistryError> {
        let vocab = &options.vocabulary;
        Ok(match &self.source {
            AgentSource::Log => Box::new(LogReplay),
            AgentSource::ConstantVelocity => Box::new(ConstantVelocity),
            AgentSource::LoggedTokens => Box::new(LoggedTokens::new(vocab.clone())),
            AgentSource::Random => Box::new(RandomTokens::new(vocab.clone(), seed)),
            AgentSource::InitialPolicy => Box::new(PolicyAgent::new(
                PolicyFile::initial(vocab, 1),
                options.policy_selection,
                seed,
            )),
            AgentSource::Policy(path) => Box::new(
                PolicyAgent::new(PolicyFile::read(path)?, options.policy_selection, seed)
                    .named(self.name.clone()),
            ),
            AgentSource::Reference(path) => {
                let mut agent = ReferenceAgent::<Cpu>::load(path, None, seed, &Default::default())?;
                if let Some(s) = options.ref_sampling {
                    agent.set_sampling(s);
                }
                Box::new(agent.named(self.name.clone()))
            }
        })
    }
}

/// Parses a list of specs, refusing two agents of the same name.
///
/// # Errors
/// The first spec that does not parse, or a repeated name.
pub fn parse_specs(specs: &[String]) -> Result<Vec<AgentSpec>, RegistryError> {
    let mut out: Vec<AgentSpec> = Vec::new();
    for s in specs {
        let spec: AgentSpec = s.parse()?;
        if out.iter().any(|o| o.name == spec.name) {
            return Err(RegistryError::Unknown(format!(
                "{s} (the name {} is used twice: name them with NAME=...)",
                spec.name
            )));
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_names() {
        let p = |s: &str| s.parse::<AgentSpec>().unwrap();
        assert_eq!(p("log").source, AgentSource::Log);
        assert_eq!(p("const-vel").name, "const-vel");
        assert_eq!(p("policy").source, AgentSource::InitialPolicy);
        let a = p("policy:out/run1/policy.spw");
        assert_eq!(a.source, AgentSource::Policy("out/run1/policy.spw".into()));
        assert_eq!(a.name, "policy:policy");
        let b = p("spacer=policy:a/b.spw");
        assert_eq!(
            (b.name.as_str(), b.source.clone()),
            ("spacer", AgentSource::Policy("a/b.spw".into()))
        );
        let r = p("ref:x/reference.ckpt");
        assert_eq!(r.name, "ref:reference");
        assert!(matches!(
            "oracle".parse::<AgentSpec>(),
            Err(RegistryError::Unknown(_))
        ));
        assert!(matches!(
            "policy:".parse::<AgentSpec>(),
            Err(RegistryError::MissingFile(_))
        ));
        let e = parse_specs(&["policy:a/p.spw".into(), "policy:b/p.spw".into()]).unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        assert_eq!(
            parse_specs(&["a=policy:a/p.spw".into(), "b=policy:b/p.spw".into()])
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn agents_build_and_missing_files_are_named() {
        let o = AgentOptions::new(Vocabulary::kinematic_grid(200).unwrap());
        for s in ["log", "const-vel", "logged-tokens", "random", "policy"] {
            let spec: AgentSpec = s.parse().unwrap();
            assert!(spec.build(&o, 0).is_ok(), "{s}");
        }
        let Err(e) = "policy:no/such.spw"
            .parse::<AgentSpec>()
            .unwrap()
            .build(&o, 0)
        else {
            panic!("a missing blob loaded");
        };
        assert!(e.to_string().contains("no/such.spw"), "{e}");
        let Err(e) = "ref:no/such.ckpt"
            .parse::<AgentSpec>()
            .unwrap()
            .build(&o, 0)
        else {
            panic!("a missing checkpoint loaded");
        };
        assert!(e.to_string().contains("no/such.ckpt"), "{e}");
    }
}
