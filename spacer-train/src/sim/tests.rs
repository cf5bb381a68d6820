//! Simulator tests on hand-built scenes whose outcome is known exactly.

use std::sync::Arc;

use spacer_core::geometry::{Pose, Vec2};
use spacer_core::observation::{EgoView, ObservationConfig, PartnerView, build};
use spacer_core::policy::Selection;
use spacer_core::tokenizer::Vocabulary;

use super::testing::{self, LANE_WIDTH, constant_track, straight_road, straight_road_map};
use super::*;
use crate::policy_file::PolicyFile;
use crate::scenario::{ObjectType, Scene};

fn sim(scenes: &[Scene], config: SimConfig) -> Simulator {
    let arcs: Vec<Arc<Scene>> = scenes.iter().cloned().map(Arc::new).collect();
    Simulator::new(&arcs, config).unwrap()
}

fn run(scene: &Scene, config: SimConfig, agent: &mut dyn SimAgent, seed: u64) -> Rollout {
    let mut s = sim(std::slice::from_ref(scene), config);
    s.run(agent, seed).unwrap();
    s.rollouts().remove(0)
}

fn vocab() -> Vocabulary {
    Vocabulary::kinematic_grid(200).unwrap()
}

/// A straight road where track 1 has gaps in its log and track 3 appears only after
/// the current step.
fn gappy_scene() -> Scene {
    let mut s = straight_road(2, 2);
    for t in [20, 21, 22, 60] {
        s.tracks[1].states[t].valid = false;
        s.tracks[1].states[t].x = -10_000.0;
    }
    for t in 0..=30 {
        s.tracks[3].states[t].valid = false;
    }
    s.tracks[0].states[50].length = 5.5; // sizes may change per step in WOMD
    s
}

#[test]
fn log_replay_reproduces_the_log_exactly() {
    let scene = gappy_scene();
    let r = run(&scene, SimConfig::default(), &mut LogReplay, 1);
    assert_eq!(r.steps, 91);
    assert_eq!(
        r.agents.len(),
        3,
        "track 3 is not valid at the current step"
    );
    assert_eq!(r.objects[3].agent, None);
    for (o, t) in r.objects.iter().zip(&scene.tracks) {
        assert_eq!(o.states, t.states, "object {}", t.id);
    }
    for a in &r.agents {
        assert!(a.tokens.iter().all(|&t| t == NO_TOKEN));
        assert_eq!(a.first_collision, None);
        assert_eq!(a.first_offroad, None);
    }
}

#[test]
fn constant_velocity_moves_straight() {
    let mut scene = straight_road(1, 1);
    // Heading and velocity at the current step point up-left; the history turns.
    let v = Vec2::new(3.0, 4.0);
    for (t, s) in scene.tracks[0].states.iter_mut().enumerate() {
        s.heading = 0.9 + t as f32 * 0.01;
        s.vx = v.x;
        s.vy = v.y;
    }
    let start = scene.tracks[0].states[10];
    let r = run(&scene, SimConfig::default(), &mut ConstantVelocity, 1);
    let states = &r.objects[0].states;
    assert_eq!(&states[..=10], &scene.tracks[0].states[..=10]);
    for (t, s) in states.iter().enumerate().skip(11) {
        let dt = (t - 10) as f32 * 0.1;
        assert!((s.x - (start.x + v.x * dt)).abs() < 1e-3, "step {t}: {s:?}");
        assert!((s.y - (start.y + v.y * dt)).abs() < 1e-3, "step {t}: {s:?}");
        assert_eq!(s.heading, start.heading);
        assert_eq!((s.vx, s.vy), (v.x, v.y));
        assert!(s.valid);
        assert_eq!(
            (s.length, s.width, s.z),
            (start.length, start.width, start.z)
        );
    }
}

#[test]
fn logged_tokens_stay_close_to_the_log() {
    // Curving, accelerating drivers: the tokens must follow them within the grid
    // vocabulary's resolution.
    let mut scene = straight_road(2, 2);
    for (k, track) in scene.tracks.iter_mut().enumerate() {
        let (mut x, mut y, mut yaw) = (k as f32 * 30.0, k as f32 * 4.0, 0.0f32);
        for (t, s) in track.states.iter_mut().enumerate() {
            let speed = 5.0 + 0.1 * t as f32;
            let rate = 0.15 * ((t as f32) * 0.05 + k as f32).sin();
            *s = crate::scenario::ObjectState {
                x,
                y,
                heading: yaw,
                vx: speed * yaw.cos(),
                vy: speed * yaw.sin(),
                ..*s
            };
            x += speed * yaw.cos() * 0.1;
            y += speed * yaw.sin() * 0.1;
            yaw += rate * 0.1;
        }
    }
    let mut agent = LoggedTokens::new(vocab());
    let mut s = sim(std::slice::from_ref(&scene), SimConfig::default());
    s.run(&mut agent, 3).unwrap();
    let (mean, max) = agents::distance_to_log(&s.worlds()[0]);
    assert!(mean < 0.5 && max < 1.5, "mean {mean} m, max {max} m");
    assert!(mean > 0.0, "a grid vocabulary cannot be exact");
    let r = s.rollouts().remove(0);
    for (row, a) in r.agents.iter().enumerate() {
        assert_eq!(a.tokens, agent.row_tokens(row), "executed = encoded");
        assert!(a.tokens.iter().all(|&t| t < 200));
    }
}

#[test]
fn logged_poses_fill_gaps_and_hold_the_end() {
    let scene = gappy_scene();
    let index = SceneIndex::new(Arc::new(scene.clone()), &SimConfig::default()).unwrap();
    let p = agents::logged_poses(&index, 1, 10, 80);
    assert_eq!(p.len(), 81);
    let log = |t: usize| scene.tracks[1].states[t];
    // Steps 20..=22 lie on the line between steps 19 and 23.
    let (a, b) = (log(19), log(23));
    for (k, t) in (20..=22).enumerate() {
        let f = (k + 1) as f32 / 4.0;
        assert!((p[t - 10].x - (a.x + (b.x - a.x) * f)).abs() < 1e-3);
    }
    // Past the end of the log the last valid pose is held.
    let mut short = scene.clone();
    for t in 70..91 {
        short.tracks[0].states[t].valid = false;
    }
    let index = SceneIndex::new(Arc::new(short.clone()), &SimConfig::default()).unwrap();
    let p = agents::logged_poses(&index, 0, 10, 80);
    assert_eq!(p[80].x, short.tracks[0].states[69].x);
}

/// Two vehicles in one lane driving at each other at 9 and 10 m/s, 20 m apart at the
/// current step; a third drifting towards the road edge; a pedestrian walking across it.
fn event_scene() -> Scene {
    let tracks = vec![
        constant_track(
            0,
            ObjectType::Vehicle,
            Vec2::new(-9.0, 0.0),
            0.0,
            Vec2::new(9.0, 0.0),
            (4.0, 2.0),
        ),
        constant_track(
            1,
            ObjectType::Vehicle,
            Vec2::new(30.0, 0.0),
            std::f32::consts::PI,
            Vec2::new(-10.0, 0.0),
            (4.0, 2.0),
        ),
        // Lane 1 (y = 3.52 at the current step), moving up at 0.5 m/s: its top (y + 1)
        // reaches the edge at y = 5.25 when y = 4.25, 1.46 s later (after step 24).
        constant_track(
            2,
            ObjectType::Vehicle,
            Vec2::new(200.0, LANE_WIDTH - 0.48),
            0.0,
            Vec2::new(0.0, 0.5),
            (4.0, 2.0),
        ),
        constant_track(
            3,
            ObjectType::Pedestrian,
            Vec2::new(300.0, -5.0),
            std::f32::consts::FRAC_PI_2,
            Vec2::new(0.0, 0.9),
            (0.8, 0.8),
        ),
    ];
    testing::scene("events", tracks, straight_road_map(2, false))
}

#[test]
fn collisions_offroad_and_goals_at_known_steps() {
    let scene = event_scene();
    let r = run(&scene, SimConfig::default(), &mut LogReplay, 0);
    // Gap between the fronts: 20 - 4 = 16 m at step 10, closing at 19 m/s: 0.8 m
    // left at step 18, overlapping at step 19.
    assert_eq!(r.agents[0].first_collision, Some(19));
    assert_eq!(r.agents[1].first_collision, Some(19));
    assert!(r.agents[0].events[18].is_empty());
    assert!(r.agents[0].events[19].contains(Events::COLLISION));
    assert_eq!(r.agents[2].first_offroad, Some(25));
    assert!(!r.agents[2].events[24].contains(Events::OFFROAD));
    assert_eq!(r.agents[2].first_collision, None);
    // The pedestrian crosses the edge at y = -1.75 but GPUDrive skips that pair.
    assert_eq!(r.agents[3].first_offroad, None);
    // The goal is the last logged position: 9 m/s is within 2 m 0.2 s before the end.
    assert_eq!(r.agents[0].first_goal, Some(88));
    assert_eq!(r.agents[3].first_goal, Some(68), "0.9 m/s: 1.98 m in 2.2 s");
    assert!(r.agents[0].events[90].contains(Events::GOAL_REACHED));
    // The current step's events are recorded too; the history has none.
    assert!(
        r.agents
            .iter()
            .all(|a| a.events[..10].iter().all(|e| e.is_empty()))
    );
}

#[test]
fn box_scale_shrinks_collisions() {
    let scene = event_scene();
    let config = SimConfig {
        box_scale: 0.7,
        ..SimConfig::default()
    };
    let r = run(&scene, config, &mut LogReplay, 0);
    // Shrunk fronts: gap 20 - 2.8 = 17.2 m, 0.1 m left at step 19.
    assert_eq!(r.agents[0].first_collision, Some(20));
    // The output keeps the true boxes.
    assert_eq!(r.objects[0].states[50].length, 4.0);
}

#[test]
fn collision_behaviours() {
    let scene = event_scene();
    let base = SimConfig::default();
    let ignore = run(&scene, base, &mut ConstantVelocity, 0);
    assert_eq!(ignore.agents[0].first_collision, Some(19));
    assert_eq!(ignore.agents[0].halted_at, None);
    assert!(ignore.objects[0].states[60].x > ignore.objects[0].states[19].x + 30.0);

    let stop = SimConfig {
        collision_behaviour: CollisionBehaviour::Stop,
        ..base
    };
    let r = run(&scene, stop, &mut ConstantVelocity, 0);
    assert_eq!(r.agents[0].halted_at, Some(19));
    let at = r.objects[0].states[19];
    for s in &r.objects[0].states[20..] {
        assert_eq!(
            (s.x, s.y, s.heading, s.vx, s.vy),
            (at.x, at.y, at.heading, 0.0, 0.0)
        );
        assert!(s.valid);
    }
    assert!(r.agents[0].tokens.iter().all(|&t| t == NO_TOKEN));
    // Off-road stops too (GPUDrive: a road edge is a collision).
    assert_eq!(r.agents[2].halted_at, Some(25));
    let stopped_y = r.objects[2].states[25].y;
    assert_eq!(r.objects[2].states[90].y, stopped_y);
    // The stopped cars stay in contact, so they keep colliding.
    assert!(r.agents[0].events[60].contains(Events::COLLISION));

    let remove = SimConfig {
        collision_behaviour: CollisionBehaviour::Remove,
        ..base
    };
    let r = run(&scene, remove, &mut ConstantVelocity, 0);
    assert_eq!(r.agents[0].halted_at, Some(19));
    assert!(r.objects[0].states[19].valid);
    assert!(r.objects[0].states[20..].iter().all(|s| !s.valid));
    assert!(r.agents[0].events[20..].iter().all(|e| e.is_empty()));
    assert!(r.objects[3].states[90].valid, "the pedestrian is untouched");
}

#[test]
fn removed_agents_have_zero_observations_and_vanish_for_others() {
    let scene = event_scene();
    let config = SimConfig {
        collision_behaviour: CollisionBehaviour::Remove,
        always_observe: true,
        sim_steps: 24, // decisions up to step 32
        ..SimConfig::default()
    };
    let mut s = sim(&[scene], config);
    s.reset(0, true).unwrap();
    let hold = vec![Action::Log; s.rows().len()];
    while !s.is_done() {
        s.step(&hold).unwrap();
    }
    let obs = s.observations().unwrap();
    assert!(obs.row(0).iter().all(|&v| v == 0.0));
    assert!(obs.row(1).iter().all(|&v| v == 0.0));
    assert!(obs.row(3).iter().any(|&v| v != 0.0));
}

/// Jittered positions so that no two candidates are at exactly the same distance
/// (ties may be broken differently by different candidate orders).
fn jittered_scene(lanes: usize, agents: usize) -> Scene {
    let mut s = testing::dense_road(lanes, agents);
    for (k, t) in s.tracks.iter_mut().enumerate() {
        let jx = ((k * 7919) % 1000) as f32 * 1e-3;
        let jy = ((k * 104_729) % 1000) as f32 * 2e-4;
        for st in t.states.iter_mut() {
            st.x += jx;
            st.y += jy;
        }
    }
    s
}

/// Compares two observation rows: the ego block bit for bit, and each slot block as
/// a multiset of slots (the builder orders slots by distance and breaks exact ties by
/// candidate order, which differs between a grid and a whole-map scan; WOMD maps hold
/// duplicated segments, so ties happen).
fn assert_rows_equal(got: &[f32], want: &[f32], what: &str) {
    let cfg = ObservationConfig::default();
    assert_eq!(got.len(), want.len(), "{what}");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&got[..6]), bits(&want[..6]), "{what}: ego block");
    let blocks = [
        (6, cfg.road_offset(), 6, "partner"),
        (cfg.road_offset(), got.len(), 13, "road"),
    ];
    for (lo, hi, width, name) in blocks {
        let slots = |v: &[f32]| {
            let mut s: Vec<Vec<u32>> = v[lo..hi].chunks(width).map(bits).collect();
            s.sort();
            s
        };
        let (g, w) = (slots(got), slots(want));
        if let Some(k) = (0..g.len()).find(|&k| g[k] != w[k]) {
            panic!(
                "{what}: {name} slots differ (sorted slot {k}: {:?} vs {:?})",
                g[k], w[k]
            );
        }
    }
}

/// The observation of agent `slot` built directly from the world's state, with every
/// other present object and every road segment of the scene as candidates.
fn direct_observation(
    world: &World,
    slot: usize,
    cfg: &ObservationConfig,
) -> (Vec<f32>, usize, usize) {
    let me = world.agent_track(slot);
    let st = world.agent_state(slot);
    let tr = world.trajectory(me).last().copied().unwrap();
    let ego = EgoView {
        pose: st.pose,
        speed: st.velocity.norm(),
        length: tr.length,
        width: tr.width,
        goal: world.agent_goal(slot),
        collided: world
            .events(slot)
            .iter()
            .any(|e| e.contains(Events::COLLISION) || e.contains(Events::OFFROAD)),
        goal_visible: true,
    };
    let partners: Vec<PartnerView> = (0..world.index().num_objects())
        .filter(|&j| j != me)
        .filter_map(|j| {
            let o = world.object_state(j)?;
            let last = world.trajectory(j).last()?;
            Some(PartnerView {
                pose: o.pose,
                speed: o.velocity.norm(),
                length: last.length,
                width: last.width,
            })
        })
        .collect();
    let mut want = vec![0.0f32; cfg.len()];
    let n = build(
        cfg,
        &ego,
        &partners,
        world.index().roads().segments(),
        &mut want,
    )
    .unwrap();
    (want, n.partners, n.road_segments)
}

#[test]
fn observation_rows_equal_a_direct_build() {
    let scene = jittered_scene(4, 70);
    let config = SimConfig {
        always_observe: true,
        max_controlled: 100,
        ..SimConfig::default()
    };
    let mut s = sim(&[scene], config);
    s.reset(5, true).unwrap();
    let mut agent = RandomTokens::new(vocab(), 9);
    // Move once so that controlled agents are off their logs.
    let mut actions = vec![Action::Hold; s.rows().len()];
    {
        let batch = DecisionBatch {
            decision: 0,
            worlds: s.worlds(),
            rows: s.rows(),
            observations: None,
        };
        agent.act(&batch, &mut actions).unwrap();
    }
    s.step(&actions).unwrap();
    let world = &s.worlds()[0];
    let cfg = ObservationConfig::default();
    let obs = s.observations().unwrap();
    let mut checked = 0;
    for slot in 0..world.num_agents() {
        let (want, partners, roads) = direct_observation(world, slot, &cfg);
        assert_rows_equal(
            obs.row(s.rows().row(0, slot)),
            &want,
            &format!("agent {slot}"),
        );
        checked += usize::from(partners > 0 && roads > 0);
    }
    assert!(checked > 50, "observations had partners and roads");
    assert!(world.index().roads().segments().len() > 500);
}

#[test]
fn more_agents_than_partner_slots() {
    // 257 objects as in WOMD's ee519cf571686d19: 63 partner slots, the rest cut by
    // distance.
    let scene = jittered_scene(10, 241);
    assert!(scene.tracks.len() >= 257, "{}", scene.tracks.len());
    let config = SimConfig {
        max_controlled: 300,
        sim_steps: 4,
        ..SimConfig::default()
    };
    let mut s = sim(std::slice::from_ref(&scene), config);
    let mut agent = RandomTokens::new(vocab(), 1);
    let stats = {
        let config = SimConfig {
            always_observe: true,
            ..config
        };
        let mut s2 = sim(&[scene], config);
        let st = s2.run(&mut agent, 2).unwrap();
        let obs = s2.observations().unwrap();
        let full = (0..obs.rows())
            .filter(|&r| {
                let p = &obs.row(r)[6..6 + 63 * 6];
                p.chunks(6).all(|slot| slot.iter().any(|&v| v != 0.0))
            })
            .count();
        assert!(full > 50, "{full} agents saw 63 partners");
        st
    };
    assert_eq!(stats.agents, s.rows().len());
    assert!(stats.agents > 250);
    s.run(&mut agent, 2).unwrap();
}

#[test]
fn selection_prefers_sdc_and_tracks_to_predict() {
    let scene = straight_road(3, 4);
    let cap = SimConfig {
        max_controlled: 3,
        ..SimConfig::default()
    };
    let s = sim(std::slice::from_ref(&scene), cap);
    let w = &s.worlds()[0];
    let tracks: Vec<usize> = (0..w.num_agents()).map(|k| w.agent_track(k)).collect();
    assert_eq!(tracks, [0, 1, 2]);
    let ttp = SimConfig {
        control: ControlSelection::TracksToPredict,
        ..SimConfig::default()
    };
    let s = sim(std::slice::from_ref(&scene), ttp);
    assert_eq!(s.rows().len(), 3);
    let all = sim(&[scene], SimConfig::default());
    assert_eq!(all.rows().len(), 12);
}

#[test]
fn runs_are_deterministic_per_seed() {
    let scenes = vec![straight_road(2, 3), event_scene()];
    let config = SimConfig {
        always_observe: true,
        ..SimConfig::default()
    };
    let go = |seed: u64, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut s = sim(&scenes, config);
            let mut agent = RandomTokens::new(vocab(), 11);
            s.run(&mut agent, seed).unwrap();
            (s.rollouts(), s.observations().unwrap().as_slice().to_vec())
        })
    };
    let a = go(1, 1);
    let b = go(1, 2);
    assert_eq!(a, b, "same seed, different thread counts");
    let c = go(2, 2);
    assert_ne!(a.0, c.0, "another seed, other tokens");
}

#[test]
fn goal_dropout_hides_goals_for_the_episode() {
    let scene = straight_road(2, 3);
    let config = SimConfig {
        goal_dropout: 1.0,
        always_observe: true,
        ..SimConfig::default()
    };
    let mut s = sim(std::slice::from_ref(&scene), config);
    s.reset(1, true).unwrap();
    let obs = s.observations().unwrap();
    for r in 0..obs.rows() {
        assert_eq!(&obs.row(r)[3..5], &[0.0, 0.0]);
        assert!(obs.row(r)[0] > 0.0, "speed is still observed");
    }
    let half = SimConfig {
        goal_dropout: 0.5,
        ..config
    };
    let hidden = |seed| {
        let mut s = sim(&[testing::dense_road(4, 60)], half);
        s.run(&mut LogReplay, seed).unwrap();
        s.rollouts()[0]
            .agents
            .iter()
            .filter(|a| !a.goal_visible)
            .count()
    };
    let (h1, h2) = (hidden(1), hidden(2));
    assert!((15..=45).contains(&h1), "{h1} of 60 hidden");
    assert_ne!(h1, h2);
}

#[test]
fn policy_agent_acts_from_a_weights_blob() {
    let file = PolicyFile::initial(&vocab(), 4);
    let scene = straight_road(2, 3);
    let config = SimConfig {
        sim_steps: 6,
        ..SimConfig::default()
    };
    let sample = Selection::Sample {
        temperature: 1.0,
        top_k: 0,
    };
    let go = |selection, seed| {
        let mut agent = PolicyAgent::new(file.clone(), selection, seed);
        let mut s = sim(std::slice::from_ref(&scene), config);
        let stats = s.run(&mut agent, 1).unwrap();
        assert!(stats.observe_seconds > 0.0);
        assert_eq!(agent.values().len(), 6);
        s.rollouts().remove(0)
    };
    let a = go(sample, 3);
    assert_eq!(a, go(sample, 3));
    assert_ne!(a, go(sample, 4));
    for ag in &a.agents {
        assert_eq!(ag.tokens.len(), 3);
        assert!(ag.tokens.iter().all(|&t| t < 200));
    }
    let g = go(Selection::Argmax, 0);
    assert!(g.agents.iter().all(|ag| ag.tokens.iter().all(|&t| t < 200)));
    // A policy trained for another layout is refused with a clear message.
    let mut agent = PolicyAgent::new(file, Selection::Argmax, 0);
    let other = SimConfig {
        observation: ObservationConfig {
            max_road_segments: 120,
            ..ObservationConfig::default()
        },
        ..config
    };
    let e = sim(&[scene], other).run(&mut agent, 0).unwrap_err();
    assert!(e.to_string().contains("120"), "{e}");
}

#[test]
fn random_tokens_move_agents_with_tokens() {
    let scene = straight_road(1, 2);
    let voc = vocab();
    let r = run(
        &scene,
        SimConfig::default(),
        &mut RandomTokens::new(voc.clone(), 5),
        0,
    );
    let a = &r.agents[0];
    // Replaying the executed tokens from the current state gives the trajectory.
    let start = r.objects[0].states[10];
    let mut poses = vec![Pose::IDENTITY; 80];
    voc.decode(
        spacer_core::agent::AgentKind::Vehicle,
        Pose::new(start.x, start.y, start.heading),
        &a.tokens,
        &mut poses,
    )
    .unwrap();
    for (t, p) in poses.iter().enumerate() {
        let s = r.objects[0].states[11 + t];
        if r.agents[0].first_collision.is_none_or(|c| c > 11 + t) {
            assert!(
                (s.x - p.x).abs() < 1e-2 && (s.y - p.y).abs() < 1e-2,
                "step {t}"
            );
        }
    }
}

#[test]
fn short_scenes_and_bad_inputs() {
    let mut one = straight_road(1, 1);
    for t in &mut one.tracks {
        t.states.truncate(1);
    }
    one.current_step = 0;
    let r = run(&one, SimConfig::default(), &mut ConstantVelocity, 0);
    assert_eq!(r.steps, 81);
    assert!(r.objects[0].states[80].valid);
    let mut bad = straight_road(1, 2);
    bad.tracks[1].states.pop();
    let e = Simulator::new(&[Arc::new(bad)], SimConfig::default()).unwrap_err();
    assert!(e.to_string().contains("track 1"), "{e}");
    let mut s = sim(&[straight_road(1, 2)], SimConfig::default());
    s.reset(0, false).unwrap();
    let e = s.step(&[Action::Hold]).unwrap_err();
    assert!(matches!(
        e,
        SimError::ActionCount {
            expected: 2,
            got: 1
        }
    ));
    let nan = [spacer_core::agent::AgentState::new(Pose::new(f32::NAN, 0.0, 0.0), Vec2::ZERO); 2];
    s.step(&[Action::States(nan), Action::Hold]).unwrap();
    assert!(s.worlds()[0].agent_state(0).is_finite());
}

// ---- real scenes ------------------------------------------------------------------

fn womd(name: &str) -> Scene {
    let path = crate::paths::shared_data(format!("womd/{name}.tfrecord"));
    crate::scenario::womd::read_scenes(&path).unwrap().remove(0)
}

fn gpudrive(name: &str) -> Scene {
    crate::scenario::gpudrive::read_scene(&crate::paths::shared_data(format!("gpudrive/{name}")))
        .unwrap()
}

#[test]
fn gpudrive_fixture_agent_agent_collision() {
    // Two 1 x 1 m boxes 5 m apart; the first (heading 90 rad, i.e. 2.04 rad) moves
    // towards the second at 1 m/s. Its rotated box reaches 0.67 m above its centre, so
    // it touches the second's lower side (y = 4.5) once its centre passes y = 3.83.
    let scene = gpudrive("agent-agent-collision.json");
    assert_eq!((scene.current_step, scene.num_steps()), (0, 1));
    let log = run(&scene, SimConfig::default(), &mut LogReplay, 0);
    assert!(log.agents.iter().all(|a| a.first_collision.is_none()));
    let r = run(&scene, SimConfig::default(), &mut ConstantVelocity, 0);
    assert_eq!(r.steps, 81);
    assert_eq!(r.agents[0].first_collision, Some(39));
    assert_eq!(r.agents[1].first_collision, Some(39));
    assert!(r.agents[0].events[38].is_empty());
    let y = r.objects[0].states[39].y;
    assert!((y - 3.9).abs() < 1e-3, "{y}");
}

#[test]
fn gpudrive_fixture_agent_road_edge_collision() {
    // A 1 x 1 m box at the origin; a road edge through it.
    let scene = gpudrive("agent-road-edge-collision.json");
    for agent in [&mut LogReplay as &mut dyn SimAgent, &mut ConstantVelocity] {
        let r = run(&scene, SimConfig::default(), agent, 0);
        assert_eq!(r.agents[0].first_offroad, Some(0), "{}", agent.name());
        assert!(r.agents[0].events[0].contains(Events::OFFROAD));
        assert_eq!(r.agents[0].first_collision, None);
    }
    // Removed at once under the remove behaviour.
    let remove = SimConfig {
        collision_behaviour: CollisionBehaviour::Remove,
        ..SimConfig::default()
    };
    let r = run(&scene, remove, &mut ConstantVelocity, 0);
    assert_eq!(r.agents[0].halted_at, Some(0));
    assert!(!r.objects[0].states[1].valid);
}

#[test]
fn womd_log_replay_is_exact_and_observations_match_a_direct_build() {
    let scene = womd("637f20cafde22ff8");
    let config = SimConfig {
        always_observe: true,
        ..SimConfig::default()
    };
    let mut s = sim(std::slice::from_ref(&scene), config);
    s.run(&mut LogReplay, 0).unwrap();
    let r = s.rollouts().remove(0);
    for (o, t) in r.objects.iter().zip(&scene.tracks) {
        assert_eq!(o.states, t.states, "object {}", t.id);
    }
    // The log-replayed ground truth is mostly clean (WOMD logs have a few overlaps).
    let collided = r
        .agents
        .iter()
        .filter(|a| a.first_collision.is_some())
        .count();
    assert!(
        collided * 10 < r.agents.len(),
        "{collided} of {}",
        r.agents.len()
    );
    // Observation rows equal a direct build over every object and every road segment
    // of the scene, at the current step and two decisions later.
    s.reset(0, true).unwrap();
    let cfg = ObservationConfig::default();
    for round in 0..3 {
        let world = &s.worlds()[0];
        let obs = s.observations().unwrap();
        for slot in 0..world.num_agents() {
            if world.object_state(world.agent_track(slot)).is_none() {
                // Its log has a gap here: it is not in the scene, its row is zero.
                assert!(obs.row(slot).iter().all(|&v| v == 0.0));
                continue;
            }
            let (want, _, roads) = direct_observation(world, slot, &cfg);
            assert_rows_equal(
                obs.row(slot),
                &want,
                &format!("round {round}, agent {slot}"),
            );
            assert!(roads > 0);
        }
        let log = vec![Action::Log; s.rows().len()];
        s.step(&log).unwrap();
    }
    let roads = s.worlds()[0].index().roads().segments();
    assert!(roads.len() > 500);
}

#[test]
fn womd_scene_with_257_objects_runs() {
    let scene = womd("ee519cf571686d19");
    assert_eq!(scene.tracks.len(), 257);
    let config = SimConfig {
        max_controlled: 300,
        sim_steps: 10,
        ..SimConfig::default()
    };
    let candidates = (0..257)
        .filter(|&i| {
            scene.tracks[i].object_type.agent_kind().is_some() && scene.tracks[i].valid_at(10)
        })
        .count();
    let mut s = sim(std::slice::from_ref(&scene), config);
    assert_eq!(s.rows().len(), candidates);
    assert!(candidates > 64, "{candidates}");
    let mut agent = PolicyAgent::new(PolicyFile::initial(&vocab(), 2), Selection::Argmax, 0);
    let stats = s.run(&mut agent, 0).unwrap();
    assert_eq!(stats.agent_steps(), candidates as u64 * 10);
    // Some agents see more partners than the 63 slots hold: the nearest are kept.
    s.reset(0, true).unwrap();
    let obs = s.observations().unwrap();
    let full = (0..obs.rows())
        .filter(|&r| obs.row(r)[6 + 62 * 6..6 + 63 * 6].iter().any(|&v| v != 0.0))
        .count();
    assert!(full > 0, "no agent had 63 partners");
    let r = s.rollouts().remove(0);
    assert_eq!(r.objects.len(), 257);
}

#[test]
fn womd_logged_tokens_error_is_bounded() {
    let scene = womd("637f20cafde22ff8");
    let mut agent = LoggedTokens::new(vocab());
    let mut s = sim(std::slice::from_ref(&scene), SimConfig::default());
    s.run(&mut agent, 0).unwrap();
    // Measured with the 200-token kinematic grid: mean 0.037 m, max 0.81 m.
    let (mean, max) = agents::distance_to_log(&s.worlds()[0]);
    assert!(
        mean < 0.1 && max < 1.5,
        "logged tokens: mean {mean} m, max {max} m"
    );
    let mut cv = sim(std::slice::from_ref(&scene), SimConfig::default());
    cv.run(&mut ConstantVelocity, 0).unwrap();
    let (cv_mean, cv_max) = agents::distance_to_log(&cv.worlds()[0]);
    assert!(
        cv_mean > 10.0 * mean && cv_max > 10.0,
        "constant velocity: mean {cv_mean} m, max {cv_max} m"
    );
}
