//! Bar charts comparing sim agents per metric, as PNG (tiny-skia, with a built-in
//! bitmap font) and SVG.
//!
//! [`bar_chart`] draws one group of bars per score, one bar per agent: the realism
//! meta-metric, the three buckets and the ten feature likelihoods on a shared 0-1
//! axis (higher is better), then the simulated collision, off-road and red-light
//! rates (lower is better), and minADE on its own metre axis. The legend gives each
//! agent's colour, meta-metric and minADE. The SVG beside the PNG carries the same
//! chart with the exact values as tooltips.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tiny_skia::{Color, Paint, Pixmap, Rect, Transform};

use super::SceneScores;
use super::config::Feature;
use crate::error::{DataError, Location};
use crate::plot::{PALETTE, draw_text, text_width};

/// One group of bars: its two-line label and how to read the value.
struct Group {
    label: [&'static str; 2],
    value: fn(&SceneScores) -> f64,
}

const UNIT_GROUPS: &[Group] = &[
    Group {
        label: ["REALISM", "META"],
        value: |s| s.bucketed.realism_meta_metric,
    },
    Group {
        label: ["KINEM.", "BUCKET"],
        value: |s| s.bucketed.kinematic_metrics,
    },
    Group {
        label: ["INTER.", "BUCKET"],
        value: |s| s.bucketed.interactive_metrics,
    },
    Group {
        label: ["MAP", "BUCKET"],
        value: |s| s.bucketed.map_based_metrics,
    },
    Group {
        label: ["LINEAR", "SPEED"],
        value: |s| s.metrics.likelihood(Feature::LinearSpeed),
    },
    Group {
        label: ["LINEAR", "ACCEL"],
        value: |s| s.metrics.likelihood(Feature::LinearAcceleration),
    },
    Group {
        label: ["ANGULAR", "SPEED"],
        value: |s| s.metrics.likelihood(Feature::AngularSpeed),
    },
    Group {
        label: ["ANGULAR", "ACCEL"],
        value: |s| s.metrics.likelihood(Feature::AngularAcceleration),
    },
    Group {
        label: ["DIST TO", "OBJECT"],
        value: |s| s.metrics.likelihood(Feature::DistanceToNearestObject),
    },
    Group {
        label: ["COLLI-", "SION"],
        value: |s| s.metrics.likelihood(Feature::CollisionIndication),
    },
    Group {
        label: ["TIME TO", "COLL."],
        value: |s| s.metrics.likelihood(Feature::TimeToCollision),
    },
    Group {
        label: ["DIST TO", "EDGE"],
        value: |s| s.metrics.likelihood(Feature::DistanceToRoadEdge),
    },
    Group {
        label: ["OFF-", "ROAD"],
        value: |s| s.metrics.likelihood(Feature::OffroadIndication),
    },
    Group {
        label: ["RED", "LIGHT"],
        value: |s| s.metrics.likelihood(Feature::TrafficLightViolation),
    },
];

const RATE_GROUPS: &[Group] = &[
    Group {
        label: ["COLL.", "RATE"],
        value: |s| s.metrics.simulated_collision_rate,
    },
    Group {
        label: ["OFFROAD", "RATE"],
        value: |s| s.metrics.simulated_offroad_rate,
    },
    Group {
        label: ["RED LT", "RATE"],
        value: |s| s.metrics.simulated_traffic_light_violation_rate,
    },
];

struct Canvas {
    pixmap: Pixmap,
}

impl Canvas {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, rgb: (u8, u8, u8)) {
        if let Some(r) = Rect::from_xywh(x, y, w.max(0.0), h.max(0.0)) {
            let mut paint = Paint::default();
            paint.set_color(Color::from_rgba8(rgb.0, rgb.1, rgb.2, 255));
            paint.anti_alias = false;
            self.pixmap
                .fill_rect(r, &paint, Transform::identity(), None);
        }
    }

    fn text(&mut self, x: f32, y: f32, text: &str, scale: u32, rgb: (u8, u8, u8)) {
        let mut paint = Paint::default();
        paint.set_color(Color::from_rgba8(rgb.0, rgb.1, rgb.2, 255));
        paint.anti_alias = false;
        draw_text(&mut self.pixmap, x, y, text, scale as f32, &paint);
    }

    fn text_centered(&mut self, cx: f32, y: f32, text: &str, scale: u32, rgb: (u8, u8, u8)) {
        let w = text_width(text, scale) as f32;
        self.text(cx - w / 2.0, y, text, scale, rgb);
    }
}

/// Layout shared by the PNG and the SVG.
struct Layout {
    width: u32,
    height: u32,
    left: f32,
    top: f32,
    plot_h: f32,
    group_w: f32,
    bar_w: f32,
    gap: f32,
    ade_left: f32,
    ade_max: f64,
}

fn layout(agents: &[(&str, &SceneScores)]) -> Layout {
    let n = agents.len().max(1) as f32;
    let bar_w = if n <= 4.0 {
        16.0
    } else if n <= 8.0 {
        9.0
    } else {
        5.0
    };
    let group_w = (n * bar_w + 20.0).max(96.0);
    let groups = (UNIT_GROUPS.len() + RATE_GROUPS.len()) as f32;
    let left = 80.0;
    let gap = 30.0;
    let legend_rows = agents.len().div_ceil(2) as f32;
    let top = 60.0 + legend_rows * 26.0 + 20.0;
    let plot_h = 420.0;
    let ade_left = left + groups * group_w + 2.0 * gap;
    let width = (ade_left + group_w + 70.0) as u32;
    let height = (top + plot_h + 90.0) as u32;
    let ade_max = agents
        .iter()
        .map(|(_, s)| s.bucketed.min_ade)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Four gridline steps of a round size.
    let ade_max = 4.0 * nice_ceiling((ade_max / 4.0).max(0.025));
    Layout {
        width,
        height,
        left,
        top,
        plot_h,
        group_w,
        bar_w,
        gap,
        ade_left,
        ade_max,
    }
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v - 1e-12 {
            return m * p;
        }
    }
    10.0 * p
}

/// A minADE axis label with as many decimals as the axis step needs.
fn ade_label(v: f64, max: f64) -> String {
    if max >= 4.0 {
        format!("{v:.0}")
    } else if max >= 0.4 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Height of a bar of value fraction `frac`: at least 2 px so that zeros show.
fn bar_top(l: &Layout, frac: f64) -> f32 {
    l.y(frac).min(l.top + l.plot_h - 2.0)
}

impl Layout {
    fn group_x(&self, g: usize) -> f32 {
        let extra = if g >= UNIT_GROUPS.len() {
            self.gap
        } else {
            0.0
        };
        self.left + g as f32 * self.group_w + extra
    }

    fn bar_x(&self, group_x: f32, agent: usize, n: usize) -> f32 {
        let total = n as f32 * self.bar_w;
        group_x + (self.group_w - total) / 2.0 + agent as f32 * self.bar_w
    }

    fn y(&self, frac: f64) -> f32 {
        self.top + self.plot_h * (1.0 - frac.clamp(0.0, 1.0) as f32)
    }
}

/// Longest agent name the legend's column holds; longer ones keep their end (a
/// checkpoint path's file name) behind "..".
const LEGEND_NAME_CHARS: usize = 22;

fn legend_entry(name: &str, s: &SceneScores) -> String {
    let chars = name.chars().count();
    let name: String = if chars > LEGEND_NAME_CHARS {
        let tail: String = name.chars().skip(chars + 2 - LEGEND_NAME_CHARS).collect();
        format!("..{tail}")
    } else {
        name.to_string()
    };
    format!(
        "{name}  META {:.3}  MINADE {:.2} M",
        s.bucketed.realism_meta_metric, s.bucketed.min_ade
    )
}

/// The chart as PNG bytes.
pub fn bar_chart_png(title: &str, agents: &[(&str, &SceneScores)]) -> Vec<u8> {
    let l = layout(agents);
    let Some(pixmap) = Pixmap::new(l.width, l.height) else {
        return Vec::new();
    };
    let mut c = Canvas { pixmap };
    c.pixmap.fill(Color::WHITE);
    let ink = (30, 30, 30);
    let grid = (215, 215, 215);
    let n = agents.len();

    c.text(l.left, 16.0, title, 3, ink);
    for (i, (name, s)) in agents.iter().enumerate() {
        let col = PALETTE[i % PALETTE.len()];
        let x = l.left + (i % 2) as f32 * 620.0;
        let y = 60.0 + (i / 2) as f32 * 26.0;
        c.rect(x, y, 16.0, 16.0, col);
        c.text(x + 24.0, y + 1.0, &legend_entry(name, s), 2, ink);
    }

    // Likelihood and rate panel: shared 0..1 axis.
    let right = l.group_x(UNIT_GROUPS.len() + RATE_GROUPS.len() - 1) + l.group_w;
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = l.y(f);
        c.rect(l.left, y, right - l.left, 1.0, grid);
        let label = format!("{f:.2}");
        c.text(
            l.left - 8.0 - text_width(&label, 2) as f32,
            y - 7.0,
            &label,
            2,
            ink,
        );
    }
    let groups: Vec<&Group> = UNIT_GROUPS.iter().chain(RATE_GROUPS).collect();
    for (g, group) in groups.iter().enumerate() {
        let gx = l.group_x(g);
        for (a, (_, s)) in agents.iter().enumerate() {
            let v = (group.value)(s);
            if !v.is_finite() {
                continue;
            }
            let x = l.bar_x(gx, a, n);
            let y = bar_top(&l, v);
            c.rect(
                x,
                y,
                l.bar_w - 1.0,
                l.top + l.plot_h - y,
                PALETTE[a % PALETTE.len()],
            );
        }
        let cx = gx + l.group_w / 2.0;
        c.text_centered(cx, l.top + l.plot_h + 12.0, group.label[0], 2, ink);
        c.text_centered(cx, l.top + l.plot_h + 32.0, group.label[1], 2, ink);
    }
    c.rect(l.left, l.top + l.plot_h, right - l.left, 2.0, ink);
    let rates_x = l.group_x(UNIT_GROUPS.len());
    c.rect(
        rates_x - l.gap / 2.0,
        l.top - 10.0,
        2.0,
        l.plot_h + 10.0,
        ink,
    );
    c.text(
        l.left,
        l.top - 22.0,
        "LIKELIHOODS (HIGHER IS BETTER)",
        2,
        ink,
    );
    c.text(rates_x, l.top - 22.0, "RATES (LOWER)", 2, ink);

    // minADE panel: its own axis in metres.
    let ax = l.ade_left;
    c.text(ax, l.top - 22.0, "MINADE", 2, ink);
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = l.y(f);
        c.rect(ax, y, l.group_w, 1.0, grid);
        let label = ade_label(f * l.ade_max, l.ade_max);
        c.text(ax + l.group_w + 6.0, y - 7.0, &label, 2, ink);
    }
    for (a, (_, s)) in agents.iter().enumerate() {
        let v = s.bucketed.min_ade / l.ade_max;
        if !v.is_finite() {
            continue;
        }
        let x = l.bar_x(ax, a, n);
        let y = bar_top(&l, v);
        c.rect(
            x,
            y,
            l.bar_w - 1.0,
            l.top + l.plot_h - y,
            PALETTE[a % PALETTE.len()],
        );
    }
    c.rect(ax, l.top + l.plot_h, l.group_w, 2.0, ink);
    c.text_centered(ax + l.group_w / 2.0, l.top + l.plot_h + 12.0, "MIN", 2, ink);
    c.text_centered(ax + l.group_w / 2.0, l.top + l.plot_h + 32.0, "ADE", 2, ink);

    c.pixmap.encode_png().unwrap_or_default()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart as an SVG document (same layout, real text, values as tooltips).
pub fn bar_chart_svg(title: &str, agents: &[(&str, &SceneScores)]) -> String {
    let l = layout(agents);
    let n = agents.len();
    let mut s = String::new();
    let hex = |c: (u8, u8, u8)| format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="14">"#,
        l.width, l.height
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="36" font-size="22">{}</text>"#,
        l.left,
        xml_escape(title)
    );
    for (i, (name, sc)) in agents.iter().enumerate() {
        let x = l.left + (i % 2) as f32 * 620.0;
        let y = 60.0 + (i / 2) as f32 * 26.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{y}" width="16" height="16" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            hex(PALETTE[i % PALETTE.len()]),
            x + 24.0,
            y + 13.0,
            xml_escape(&legend_entry(name, sc))
        );
    }
    let right = l.group_x(UNIT_GROUPS.len() + RATE_GROUPS.len() - 1) + l.group_w;
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = l.y(f);
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{y}" x2="{right}" y2="{y}" stroke="#d7d7d7"/><text x="{}" y="{}" text-anchor="end">{f:.2}</text>"##,
            l.left,
            l.left - 8.0,
            y + 5.0
        );
    }
    let groups: Vec<&Group> = UNIT_GROUPS.iter().chain(RATE_GROUPS).collect();
    for (g, group) in groups.iter().enumerate() {
        let gx = l.group_x(g);
        for (a, (name, sc)) in agents.iter().enumerate() {
            let v = (group.value)(sc);
            if !v.is_finite() {
                continue;
            }
            let x = l.bar_x(gx, a, n);
            let y = bar_top(&l, v);
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{}"><title>{} {} {}: {v:.5}</title></rect>"#,
                l.bar_w - 1.0,
                l.top + l.plot_h - y,
                hex(PALETTE[a % PALETTE.len()]),
                xml_escape(name),
                group.label[0],
                group.label[1]
            );
        }
        let cx = gx + l.group_w / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="{cx}" y="{}" text-anchor="middle">{}</text><text x="{cx}" y="{}" text-anchor="middle">{}</text>"#,
            l.top + l.plot_h + 24.0,
            group.label[0],
            l.top + l.plot_h + 42.0,
            group.label[1]
        );
    }
    let ax = l.ade_left;
    for (a, (name, sc)) in agents.iter().enumerate() {
        let v = sc.bucketed.min_ade;
        if !v.is_finite() {
            continue;
        }
        let x = l.bar_x(ax, a, n);
        let y = bar_top(&l, v / l.ade_max);
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{}"><title>{} minADE: {v:.4} m</title></rect>"#,
            l.bar_w - 1.0,
            l.top + l.plot_h - y,
            hex(PALETTE[a % PALETTE.len()]),
            xml_escape(name)
        );
    }
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = l.y(f);
        let _ = writeln!(
            s,
            r##"<line x1="{ax}" y1="{y}" x2="{}" y2="{y}" stroke="#d7d7d7"/><text x="{}" y="{}">{}</text>"##,
            ax + l.group_w,
            ax + l.group_w + 6.0,
            y + 5.0,
            ade_label(f * l.ade_max, l.ade_max)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}">Likelihoods (higher is better)</text><text x="{}" y="{}">Rates (lower)</text><text x="{ax}" y="{}">minADE (m)</text><text x="{}" y="{}" text-anchor="middle">minADE</text>"#,
        l.left,
        l.top - 12.0,
        l.group_x(UNIT_GROUPS.len()),
        l.top - 12.0,
        l.top - 12.0,
        ax + l.group_w / 2.0,
        l.top + l.plot_h + 24.0
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// The two files [`bar_chart`] writes for `path`: the PNG and the SVG. A path ending
/// in `.svg` is the SVG, with the PNG beside it; any other path is the PNG, with the
/// SVG beside it (so `--chart x.svg` never writes a PNG into `x.svg`).
pub fn chart_paths(path: &Path) -> (PathBuf, PathBuf) {
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg {
        (path.with_extension("png"), path.to_path_buf())
    } else {
        (path.to_path_buf(), path.with_extension("svg"))
    }
}

/// Draws the chart of `agents` (name and scores, one colour each) as PNG and as SVG,
/// at the two [`chart_paths`] of `path`; returns them (PNG, then SVG).
///
/// # Errors
/// [`DataError`] naming the file when it cannot be written, or when there is nothing to
/// draw.
pub fn bar_chart(
    title: &str,
    agents: &[(&str, &SceneScores)],
    path: &Path,
) -> Result<[PathBuf; 2], DataError> {
    if agents.is_empty() {
        return Err(DataError::invalid(
            path,
            Location::file(),
            "no agents to chart",
        ));
    }
    let png = bar_chart_png(title, agents);
    if png.is_empty() {
        return Err(DataError::invalid(
            path,
            Location::file(),
            "could not encode the PNG",
        ));
    }
    let (png_path, svg_path) = chart_paths(path);
    crate::fsutil::write_atomic(&png_path, &png)?;
    crate::fsutil::write_atomic(&svg_path, bar_chart_svg(title, agents).as_bytes())?;
    Ok([png_path, svg_path])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::scene::{SimAgentMetrics, SimAgentsBucketedMetrics};
    use crate::plot::glyph;

    #[test]
    fn long_agent_names_keep_their_end_in_the_legend() {
        let s = scores(0.5);
        assert!(legend_entry("log", &s).starts_with("log  META 0.500"));
        let long = legend_entry("ref:out/demo/reference/reference.ckpt", &s);
        let name = long.split("  META").next().unwrap_or_default();
        assert_eq!(name.chars().count(), LEGEND_NAME_CHARS, "{long}");
        assert!(
            name.starts_with("..") && name.ends_with("reference.ckpt"),
            "{long}"
        );
    }

    pub(crate) fn scores(v: f64) -> SceneScores {
        let mut m = SimAgentMetrics::default();
        for f in Feature::ALL {
            crate::metrics::scene::set_likelihood(&mut m, f, v);
        }
        m.metametric = v;
        m.simulated_collision_rate = 1.0 - v;
        m.min_average_displacement_error = 10.0 * (1.0 - v);
        SceneScores {
            bucketed: SimAgentsBucketedMetrics {
                realism_meta_metric: v,
                kinematic_metrics: v,
                interactive_metrics: v,
                map_based_metrics: v,
                min_ade: 10.0 * (1.0 - v),
                ..Default::default()
            },
            metrics: m,
        }
    }

    #[test]
    fn every_glyph_used_in_labels_exists() {
        let unknown = glyph('~');
        for g in UNIT_GROUPS.iter().chain(RATE_GROUPS) {
            for c in g.label.concat().chars() {
                assert!(c == '?' || glyph(c) != unknown, "no glyph for {c:?}");
            }
        }
        assert_eq!(text_width("AB", 2), 22);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(0.1), 0.1);
        assert_eq!(ade_label(2.0, 4.0), "2");
        assert_eq!(ade_label(0.5, 2.0), "0.5");
    }

    #[test]
    fn writes_png_and_svg() {
        let a = scores(0.8);
        let b = scores(0.3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        bar_chart(
            "TEST",
            &[("log replay", &a), ("constant velocity", &b)],
            &path,
        )
        .unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let pm = Pixmap::decode_png(&png).unwrap();
        // The two agents' colours both appear.
        let has = |c: (u8, u8, u8)| {
            pm.pixels()
                .iter()
                .any(|p| (p.red(), p.green(), p.blue()) == c)
        };
        assert!(has(PALETTE[0]) && has(PALETTE[1]));
        let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("log replay")
                && svg.trim_end().ends_with("</svg>")
        );
        assert!(bar_chart("T", &[], &path).is_err());
    }

    #[test]
    fn an_svg_path_gets_the_svg_and_a_png_beside_it() {
        // `--chart x.svg` used to write the PNG into x.svg, then overwrite it.
        let a = scores(0.8);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.svg");
        let [png, svg] = bar_chart("TEST", &[("log", &a)], &path).unwrap();
        assert_eq!((png.clone(), svg.clone()), (dir.path().join("x.png"), path));
        assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        let [png, svg] = bar_chart("TEST", &[("log", &a)], &dir.path().join("c")).unwrap();
        assert_ne!(png, svg);
        assert_eq!(chart_paths(Path::new("a/b.PNG")).1, Path::new("a/b.svg"));
    }
}
