//! Experience: one full episode in every world of a batch, the policy acting with
//! spacer-core's forward pass (the deployed function, in parallel over agents), the
//! task reward read from the simulator's events.
//!
//! A sample is one decision of one acting agent: its observation (packed:
//! [`PackedBatch`]), the token it drew from the full softmax, that token's
//! log-probability and the critic's value, and after the episode its reward and
//! whether its episode ended there. Rewards are the trainer's, not the simulator's
//! ([`RewardSection`]): over the two steps a decision covers, `goal` once when the
//! agent first reaches its goal, `collision` when it overlaps another object and
//! `offroad` when a vehicle touches a road edge; an episode ends for an agent when
//! the simulator stops or removes it (its goal, a collision, per the environment's
//! settings) or at the last decision (treated as terminal, as GPUDrive does).

use rayon::prelude::*;
use spacer_core::math::Rng;
use spacer_core::policy::{Policy, Selection, log_softmax_at, select};
use spacer_core::tokenizer::{Token, Vocabulary};

use super::config::RewardSection;
use crate::late_fusion::native::PackedBatch;
use crate::sim::{Action, Events, SimError, Simulator, World, derive_seed};

/// No next sample (the agent's episode ended).
pub const NO_NEXT: u32 = u32::MAX;

/// Agents per parallel task of the acting forward pass.
const ACT_CHUNK: usize = 16;

/// The samples of one batch of episodes.
#[derive(Clone, Debug, Default)]
pub struct Experience {
    /// Observations.
    pub obs: PackedBatch,
    /// Token drawn.
    pub actions: Vec<u16>,
    /// Its log-probability under the acting policy.
    pub logp: Vec<f32>,
    /// The critic's value.
    pub values: Vec<f32>,
    /// Task reward.
    pub task_rewards: Vec<f32>,
    /// Reward in all (task + alpha log pi_ref), set by the trainer.
    pub rewards: Vec<f32>,
    /// The agent's episode ended at this sample.
    pub dones: Vec<bool>,
    /// The same agent's sample at the next decision, or [`NO_NEXT`].
    pub next: Vec<u32>,
    /// World of the sample.
    pub world: Vec<u32>,
    /// Agent slot in its world.
    pub slot: Vec<u16>,
    /// Decision number.
    pub decision: Vec<u16>,
    /// Episode outcomes.
    pub episodes: EpisodeStats,
}

/// What the agents of a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpisodeStats {
    /// Agents that acted at least once.
    pub agents: usize,
    /// Of which reached their goal.
    pub goal: usize,
    /// Collided at least once.
    pub collision: usize,
    /// Touched a road edge at least once.
    pub offroad: usize,
    /// Sum of the agents' undiscounted task returns.
    pub task_return: f64,
    /// 10 Hz agent-steps simulated for acting agents (two per sample).
    pub agent_steps: u64,
}

impl EpisodeStats {
    /// A share of the agents.
    pub fn rate(&self, n: usize) -> f64 {
        if self.agents == 0 {
            0.0
        } else {
            n as f64 / self.agents as f64
        }
    }
}

impl Experience {
    /// Samples.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Runs one episode in every world of `sim` with `policy` (`vocab` gives the tokens'
/// motions), seeded, and returns the samples with their task rewards.
///
/// # Errors
/// [`SimError`] from the simulator or the policy.
pub fn collect(
    sim: &mut Simulator,
    policy: &Policy<'_>,
    vocab: &Vocabulary,
    rewards: &RewardSection,
    seed: u64,
) -> Result<Experience, SimError> {
    sim.reset(seed, true)?;
    let rows = sim.rows().len();
    let k = policy.actions();
    let d = policy.observation_len();
    let decisions = sim.config().decisions();
    let mut exp = Experience {
        obs: PackedBatch::new(policy.dims()),
        ..Experience::default()
    };
    let mut last: Vec<u32> = vec![NO_NEXT; rows];
    let mut logits = vec![0.0f32; rows * k];
    let mut values = vec![0.0f32; rows];
    let mut actions = vec![Action::Hold; rows];
    let mut chosen: Vec<Option<(u16, f32)>> = vec![None; rows];
    for decision in 0..decisions {
        let obs = sim.observations().ok_or_else(|| {
            SimError::Config("the trainer's simulator builds no observations".into())
        })?;
        if obs.row_len() != d {
            return Err(SimError::Config(format!(
                "observations have {} floats, the policy reads {d}",
                obs.row_len()
            )));
        }
        let (worlds, index) = (sim.worlds(), sim.rows());
        let acting: Vec<bool> = (0..rows)
            .map(|r| {
                let (w, s) = index.locate(r);
                worlds[w].is_acting(s)
            })
            .collect();
        obs.as_slice()
            .par_chunks(d * ACT_CHUNK)
            .zip(logits.par_chunks_mut(k * ACT_CHUNK))
            .zip(values.par_chunks_mut(ACT_CHUNK))
            .zip(acting.par_chunks(ACT_CHUNK))
            .try_for_each(|(((o, l), v), a)| {
                if a.iter().any(|&x| x) {
                    policy.forward_batch(o, l, v)
                } else {
                    Ok(())
                }
            })
            .map_err(SimError::Policy)?;
        chosen
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(r, c)| {
                *c = None;
                if !acting[r] {
                    return Ok(());
                }
                let (w, s) = index.locate(r);
                let mut rng = Rng::new(derive_seed(
                    seed,
                    &[worlds[w].seed(), s as u64, decision as u64, 0xac7],
                ));
                let l = &logits[r * k..(r + 1) * k];
                let token = select(
                    l,
                    Selection::Sample {
                        temperature: 1.0,
                        top_k: 0,
                    },
                    &mut rng,
                )?;
                *c = Some((token, log_softmax_at(l, token as usize)));
                Ok(())
            })
            .map_err(SimError::Policy)?;
        for r in 0..rows {
            actions[r] = Action::Hold;
            let Some((token, logp)) = chosen[r] else {
                continue;
            };
            let (w, s) = index.locate(r);
            let kind = worlds[w].agent_kind(s);
            let motion = vocab
                .get(kind, token as usize)
                .copied()
                .unwrap_or(Token::STILL);
            actions[r] = Action::Token {
                index: token,
                token: motion,
            };
            let i = exp.actions.len() as u32;
            if last[r] != NO_NEXT {
                exp.next[last[r] as usize] = i;
            }
            last[r] = i;
            exp.obs.push(obs.row(r));
            exp.actions.push(token);
            exp.logp.push(logp);
            exp.values.push(values[r]);
            exp.next.push(NO_NEXT);
            exp.world.push(w as u32);
            exp.slot.push(s as u16);
            exp.decision.push(decision as u16);
        }
        sim.step(&actions)?;
    }
    // Rewards and episode ends from the simulator's events.
    let n = exp.len();
    exp.task_rewards = vec![0.0; n];
    exp.dones = vec![false; n];
    let worlds = sim.worlds();
    let mut seen = vec![false; rows];
    for i in 0..n {
        let (w, s, d) = (
            exp.world[i] as usize,
            exp.slot[i] as usize,
            exp.decision[i] as usize,
        );
        let world = &worlds[w];
        let cur = world.index().current_step();
        let (r, done) = decision_outcome(world, s, d, decisions, rewards);
        exp.task_rewards[i] = r;
        exp.dones[i] = done || exp.next[i] == NO_NEXT;
        let row = sim.rows().row(w, s);
        let st = &mut exp.episodes;
        if !seen[row] {
            seen[row] = true;
            st.agents += 1;
            st.goal += usize::from(world.first_goal(s).is_some());
            let ev = world.events(s).get(cur + 1..).unwrap_or(&[]);
            st.collision += usize::from(ev.iter().any(|e| e.contains(Events::COLLISION)));
            st.offroad += usize::from(ev.iter().any(|e| e.contains(Events::OFFROAD)));
        }
        st.task_return += r as f64;
        st.agent_steps += 2;
    }
    exp.rewards = exp.task_rewards.clone();
    Ok(exp)
}

/// The task reward of agent `slot`'s decision `decision` (of `decisions`) in
/// `world`, once the world has simulated the decision's two steps, and whether the
/// agent's episode ended there (stopped or removed by its goal or a collision, or
/// the last decision). See the module docs for the reward.
pub fn decision_outcome(
    world: &World,
    slot: usize,
    decision: usize,
    decisions: usize,
    rewards: &RewardSection,
) -> (f32, bool) {
    let cur = world.index().current_step();
    let (t0, t1) = (cur + 2 * decision + 1, cur + 2 * decision + 2);
    let events = world.events(slot);
    let window = events
        .get(t0.min(events.len())..(t1 + 1).min(events.len()))
        .unwrap_or(&[]);
    let mut r = 0.0f32;
    if world
        .first_goal(slot)
        .is_some_and(|g| (t0..=t1).contains(&g))
    {
        r += rewards.goal;
    }
    if window.iter().any(|e| e.contains(Events::COLLISION)) {
        r += rewards.collision;
    }
    if window.iter().any(|e| e.contains(Events::OFFROAD)) {
        r += rewards.offroad;
    }
    let halted = world.halted_at(slot).is_some_and(|h| h <= t1);
    (r, halted || decision + 1 >= decisions)
}

/// Generalised advantage estimation over each agent's chain of samples: returns
/// (advantages, returns), `returns = advantages + values`.
pub fn gae(exp: &Experience, gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    let n = exp.len();
    let mut adv = vec![0.0f32; n];
    // A sample's successor always comes later, so one backward sweep suffices.
    for i in (0..n).rev() {
        let (next_v, next_a) = match (exp.dones[i], exp.next[i]) {
            (false, j) if j != NO_NEXT => (exp.values[j as usize], adv[j as usize]),
            _ => (0.0, 0.0),
        };
        let delta = exp.rewards[i] + gamma * next_v - exp.values[i];
        adv[i] = delta + gamma * lambda * next_a;
    }
    let ret = adv.iter().zip(&exp.values).map(|(a, v)| a + v).collect();
    (adv, ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_follows_each_agents_chain() {
        // Two agents interleaved: agent A has samples 0, 2, 4 (done at 4); agent B
        // samples 1, 3 (done at 3).
        let exp = Experience {
            rewards: vec![0.0, 1.0, 0.0, 0.0, 1.0],
            values: vec![0.5, 0.2, 0.4, 0.1, 0.3],
            dones: vec![false, false, false, true, true],
            next: vec![2, 3, 4, NO_NEXT, NO_NEXT],
            actions: vec![0; 5],
            ..Experience::default()
        };
        let (adv, ret) = gae(&exp, 0.9, 0.8);
        // Agent A's last sample: delta = 1 - 0.3.
        assert!((adv[4] - 0.7).abs() < 1e-6);
        // Its middle one: delta = 0 + 0.9 * 0.3 - 0.4, plus 0.72 * 0.7.
        assert!((adv[2] - (0.27 - 0.4 + 0.72 * 0.7)).abs() < 1e-6);
        // Agent B's last: delta = 0 - 0.1 (done).
        assert!((adv[3] + 0.1).abs() < 1e-6);
        assert!((adv[1] - (1.0 + 0.9 * 0.1 - 0.2 + 0.72 * -0.1)).abs() < 1e-6);
        for i in 0..5 {
            assert!((ret[i] - adv[i] - exp.values[i]).abs() < 1e-6);
        }
    }
}
