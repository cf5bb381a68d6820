//! `spacer data render`: one scene at one step to a PNG or SVG file.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::render::{RenderOptions, Window, render_to_file};
use crate::scenario::load::load_nth_scene;

/// Arguments of `spacer data render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The scene file: WOMD `.tfrecord`, GPUDrive `.json`, scene cache `.spc` or
    /// INTERACTION `.csv`.
    pub scene: PathBuf,
    /// Output image, `.png` or `.svg`.
    #[arg(long)]
    pub out: PathBuf,
    /// Step to show (default: the scene's current step, 10).
    #[arg(long)]
    pub step: Option<usize>,
    /// Which scene of a multi-scene file (0-based).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Width of the map area in pixels.
    #[arg(long, default_value_t = 900)]
    pub size: u32,
    /// World window `MIN_X,MIN_Y,MAX_X,MAX_Y` in metres (default: fit the agents).
    #[arg(long, value_parser = parse_window)]
    pub window: Option<Window>,
    /// Show a square of this half-size (metres) around the self-driving car instead
    /// of fitting every agent.
    #[arg(long)]
    pub radius: Option<f32>,
    /// Leave out trajectories.
    #[arg(long)]
    pub no_trajectories: bool,
    /// Leave out the header, legend and scale bar.
    #[arg(long)]
    pub no_legend: bool,
}

fn parse_window(s: &str) -> Result<Window, String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| x.trim().parse::<f32>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()?;
    if !v.iter().all(|&c| crate::limits::coordinate_ok(c)) {
        return Err(format!(
            "window corners must be finite and within +-{} m",
            crate::limits::MAX_COORDINATE_M
        ));
    }
    match v[..] {
        [min_x, min_y, max_x, max_y] if max_x > min_x && max_y > min_y => Ok(Window {
            min_x,
            min_y,
            max_x,
            max_y,
        }),
        _ => Err("expected MIN_X,MIN_Y,MAX_X,MAX_Y with MIN < MAX".into()),
    }
}

/// Renders the scene and says where it went.
pub fn run(args: RenderArgs) -> anyhow::Result<()> {
    if let Some(r) = args.radius
        && !(r.is_finite() && r > 1.0 && r <= crate::limits::MAX_COORDINATE_M)
    {
        anyhow::bail!(
            "--radius {r}: expected more than 1 and at most {} m",
            crate::limits::MAX_COORDINATE_M
        );
    }
    let scene = load_nth_scene(&args.scene, args.index)?;
    let options = RenderOptions {
        step: args.step,
        size: args.size,
        window: args.window,
        radius: args.radius,
        trajectories: !args.no_trajectories,
        legend: !args.no_legend,
        ..RenderOptions::default()
    };
    render_to_file(&scene, &options, &args.out)
        .with_context(|| format!("cannot render scene {}", scene.id))?;
    println!(
        "rendered scene {} step {} to {}",
        scene.id,
        args.step.unwrap_or(scene.current_step),
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        let w = parse_window("-10,-5,30,40").unwrap();
        assert_eq!((w.min_x, w.max_y), (-10.0, 40.0));
        assert!(parse_window("1,2,3").is_err());
        assert!(parse_window("5,0,1,1").is_err());
        assert!(parse_window("a,b,c,d").is_err());
        assert!(parse_window("-inf,0,1,1").is_err());
        assert!(parse_window("0,0,1e30,1").is_err());
        assert!(parse_window("nan,0,1,1").is_err());
    }

    #[test]
    fn renders_from_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("s.spc");
        let scenes = crate::scenario::synthetic::generate_many(
            &crate::scenario::synthetic::SyntheticConfig::default(),
            2,
            3,
        );
        crate::scenario::cache::write_cache(&cache, &scenes).unwrap();
        let out = dir.path().join("r.svg");
        run(RenderArgs {
            scene: cache.clone(),
            out: out.clone(),
            step: Some(50),
            index: 1,
            size: 300,
            window: None,
            radius: Some(40.0),
            no_trajectories: false,
            no_legend: false,
        })
        .unwrap();
        assert!(
            std::fs::read_to_string(&out)
                .unwrap()
                .contains(&scenes[1].id)
        );
        let e = load_nth_scene(&cache, 5).unwrap_err().to_string();
        assert!(e.contains("holds 2 scenes"), "{e}");
        for radius in [f32::NAN, -3.0, 1e30] {
            let e = run(RenderArgs {
                scene: cache.clone(),
                out: out.clone(),
                step: None,
                index: 0,
                size: 300,
                window: None,
                radius: Some(radius),
                no_trajectories: false,
                no_legend: false,
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("--radius"), "{e}");
        }
    }

    #[test]
    fn renders_real_scenes_of_every_shipped_format() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "womd/637f20cafde22ff8.tfrecord",
            "gpudrive/tl_tfrecord-00000-of-00150_2a173b334be3d32c.json",
        ] {
            let scene = load_nth_scene(&crate::paths::shared_data(file), 0).unwrap();
            let out = dir.path().join("real.png");
            crate::render::render_to_file(
                &scene,
                &RenderOptions {
                    size: 256,
                    ..RenderOptions::default()
                },
                &out,
            )
            .unwrap();
            assert!(std::fs::metadata(&out).unwrap().len() > 1000, "{file}");
        }
        // A one-step fixture renders too.
        let fixture = crate::paths::shared_data("gpudrive/agent-agent-collision.json");
        let scene = load_nth_scene(&fixture, 0).unwrap();
        let svg = crate::render::render_svg(
            &scene,
            &RenderOptions {
                step: Some(0),
                ..RenderOptions::default()
            },
        )
        .unwrap();
        assert!(svg.contains("<polygon"));
    }
}
