//! Bird's-eye renders of a [`Scene`] at one step, as PNG (tiny-skia) or SVG
//! (hand-written XML).
//!
//! Both formats draw the same display list, so they show the same picture:
//!
//! - **roads by kind**: lane centre lines drawn twice, first as a wide asphalt band
//!   (the lane's drivable surface; 3.6 m, 1.8 m for bike lanes) and later as a thin
//!   grey line; road lines white or yellow by sub-type, doubled for double lines and
//!   dashed for broken ones; road edges thick and dark; crosswalks as zebra stripes;
//!   speed bumps amber; driveways light grey; stop signs as red octagons; traffic
//!   lights as discs (triangles for arrows) at their stop points, coloured by state;
//! - **agents** as boxes by type (vehicle blue, pedestrian orange, cyclist green,
//!   other grey) with a heading tick; the self-driving car magenta with a white
//!   outline; pedestrians get a minimum on-screen size so they stay visible;
//! - **trajectories**: the logged past up to the step solid, the future faint;
//! - a header (scene id, step, time), a side panel with agent counts and a legend,
//!   and a scale bar.
//!
//! The view fits every valid agent state of the log plus a margin, or a window the
//! caller gives. Text: tiny-skia has no text rendering, so PNGs use a small built-in
//! 5 x 7 bitmap font (upper case, digits and common punctuation; lower case is drawn
//! upper case); SVGs use real `<text>` in a monospace font with the original case.

use std::fmt::Write as _;
use std::path::Path;

use tiny_skia::{
    FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, PixmapPaint, Stroke, StrokeDash,
    Transform,
};

use crate::error::DataError;
use crate::scenario::{
    MapFeature, MapFeatureKind, MapPoint, ObjectType, RoadLineType, Scene, SignalState,
};

/// A rectangle of the world to draw (metres).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Left.
    pub min_x: f32,
    /// Bottom.
    pub min_y: f32,
    /// Right.
    pub max_x: f32,
    /// Top.
    pub max_y: f32,
}

impl Window {
    fn is_usable(&self) -> bool {
        [self.min_x, self.min_y, self.max_x, self.max_y]
            .iter()
            .all(|v| v.is_finite())
            && self.max_x - self.min_x > 1e-3
            && self.max_y - self.min_y > 1e-3
    }
}

/// What to draw and how big.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderOptions {
    /// The step to show; `None` is the scene's current step.
    pub step: Option<usize>,
    /// Width of the map area in pixels (the side panel adds [`PANEL_WIDTH`]).
    pub size: u32,
    /// The world window; `None` fits the agents plus [`RenderOptions::margin`].
    pub window: Option<Window>,
    /// Margin around the agents when fitting (metres).
    pub margin: f32,
    /// Instead of fitting, show a square of this half-size (metres) centred on the
    /// self-driving car at the step (on the fitted centre if it has none). A given
    /// [`RenderOptions::window`] wins.
    pub radius: Option<f32>,
    /// Draw past and future trajectories.
    pub trajectories: bool,
    /// Draw the header, legend panel and scale bar.
    pub legend: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            step: None,
            size: 900,
            window: None,
            margin: 12.0,
            radius: None,
            trajectories: true,
            legend: true,
        }
    }
}

/// Width of the legend panel (pixels).
pub const PANEL_WIDTH: u32 = 230;
const HEADER: u32 = 34;

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The step does not exist.
    #[error("step {step} is outside the scene's {steps} steps (0..={})", steps.saturating_sub(1))]
    Step {
        /// Asked for.
        step: usize,
        /// Available.
        steps: usize,
    },
    /// The output file's extension is neither `.png` nor `.svg`.
    #[error("cannot render to {0:?}: the output must end in .png or .svg")]
    Format(String),
    /// The canvas could not be allocated.
    #[error("cannot make a {0} x {1} pixel canvas (size must be 64..=8192)")]
    Canvas(u32, u32),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    /// Writing the file failed.
    #[error(transparent)]
    Io(#[from] DataError),
}

/// Renders `scene` as PNG bytes.
///
/// # Errors
/// [`RenderError::Step`] for a step beyond the log, [`RenderError::Canvas`] for an
/// unusable size, [`RenderError::Encode`] if encoding fails.
pub fn render_png(scene: &Scene, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let pic = compose(scene, options)?;
    pic.to_png()
}

/// Renders `scene` as an SVG document.
///
/// # Errors
/// As [`render_png`] (no encoding errors).
pub fn render_svg(scene: &Scene, options: &RenderOptions) -> Result<String, RenderError> {
    Ok(compose(scene, options)?.to_svg())
}

/// Renders to `path`, PNG or SVG by its extension, written atomically.
///
/// # Errors
/// [`RenderError::Format`] for another extension, else as [`render_png`], or
/// [`RenderError::Io`].
pub fn render_to_file(
    scene: &Scene,
    options: &RenderOptions,
    path: &Path,
) -> Result<(), RenderError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = match ext.as_str() {
        "png" => render_png(scene, options)?,
        "svg" => render_svg(scene, options)?.into_bytes(),
        _ => return Err(RenderError::Format(path.display().to_string())),
    };
    crate::fsutil::write_atomic(path, &bytes)?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Display list.

#[derive(Clone, Copy, Debug, PartialEq)]
struct Rgba(u8, u8, u8, u8);

impl Rgba {
    const fn hex(v: u32) -> Self {
        Rgba((v >> 16) as u8, (v >> 8) as u8, v as u8, 255)
    }

    const fn alpha(self, a: u8) -> Self {
        Rgba(self.0, self.1, self.2, a)
    }

    fn paint(self) -> Paint<'static> {
        let mut p = Paint::default();
        p.set_color_rgba8(self.0, self.1, self.2, self.3);
        p.anti_alias = true;
        p
    }

    fn svg(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    fn opacity(self) -> f32 {
        self.3 as f32 / 255.0
    }
}

const BACKGROUND: Rgba = Rgba::hex(0xe9ebee);
const ASPHALT: Rgba = Rgba::hex(0x59606a);
const BIKE_ASPHALT: Rgba = Rgba::hex(0x4d6b58);
const LANE_LINE: Rgba = Rgba::hex(0x8d95a0);
const WHITE: Rgba = Rgba::hex(0xf7f7f7);
const YELLOW: Rgba = Rgba::hex(0xf2c230);
const EDGE: Rgba = Rgba::hex(0x16191d);
const DRIVEWAY: Rgba = Rgba::hex(0xa9afb7);
const BUMP: Rgba = Rgba::hex(0xf09a1a);
const STOP_RED: Rgba = Rgba::hex(0xd7261e);
const VEHICLE: Rgba = Rgba::hex(0x3d86f5);
const PEDESTRIAN: Rgba = Rgba::hex(0xff8f1f);
const CYCLIST: Rgba = Rgba::hex(0x2fbf56);
const OTHER: Rgba = Rgba::hex(0xb4b8bf);
const SDC: Rgba = Rgba::hex(0xe23cf0);
const OUTLINE: Rgba = Rgba::hex(0x111418);
const TEXT: Rgba = Rgba::hex(0x1d2127);
const PANEL: Rgba = Rgba::hex(0xfafbfc);
const LIGHT_GO: Rgba = Rgba::hex(0x22c55e);
const LIGHT_CAUTION: Rgba = Rgba::hex(0xfacc15);
const LIGHT_STOP: Rgba = Rgba::hex(0xef4444);
const LIGHT_UNKNOWN: Rgba = Rgba::hex(0x9ca3af);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Anchor {
    Start,
}

#[derive(Clone, Debug)]
enum Prim {
    Line {
        pts: Vec<(f32, f32)>,
        color: Rgba,
        width: f32,
        dash: Option<(f32, f32)>,
    },
    Poly {
        pts: Vec<(f32, f32)>,
        fill: Option<Rgba>,
        stroke: Option<(Rgba, f32)>,
    },
    Circle {
        c: (f32, f32),
        r: f32,
        fill: Rgba,
        stroke: Option<(Rgba, f32)>,
    },
    Text {
        x: f32,
        y: f32,
        /// Glyph scale: the bitmap font is 5 x 7 units, SVG text is 7 * scale high.
        scale: f32,
        color: Rgba,
        text: String,
        anchor: Anchor,
    },
}

/// A picture: the map layer (clipped to its area) and the overlay on the canvas.
struct Picture {
    width: u32,
    height: u32,
    map_origin: (f32, f32),
    map_size: (u32, u32),
    map: Vec<Prim>,
    overlay: Vec<Prim>,
}

/// World to map-layer pixels.
#[derive(Clone, Copy)]
struct View {
    min_x: f32,
    max_y: f32,
    scale: f32,
    w: f32,
    h: f32,
}

impl View {
    fn px(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.min_x) * self.scale, (self.max_y - y) * self.scale)
    }

    fn pt(&self, p: &MapPoint) -> (f32, f32) {
        self.px(p.x, p.y)
    }

    /// Metres to pixels, at least `min` pixels.
    fn len(&self, m: f32, min: f32) -> f32 {
        (m * self.scale).max(min)
    }

    fn visible(&self, pts: &[(f32, f32)], pad: f32) -> bool {
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        x1 >= -pad && y1 >= -pad && x0 <= self.w + pad && y0 <= self.h + pad
    }
}

fn fit_window(scene: &Scene, margin: f32) -> Window {
    let mut w = Window {
        min_x: f32::MAX,
        min_y: f32::MAX,
        max_x: f32::MIN,
        max_y: f32::MIN,
    };
    let mut grow = |x: f32, y: f32| {
        if x.is_finite() && y.is_finite() {
            w.min_x = w.min_x.min(x);
            w.min_y = w.min_y.min(y);
            w.max_x = w.max_x.max(x);
            w.max_y = w.max_y.max(y);
        }
    };
    let mut any = false;
    for t in &scene.tracks {
        for s in t.states.iter().filter(|s| s.valid) {
            grow(s.x, s.y);
            any = true;
        }
    }
    if !any {
        for f in &scene.map {
            for p in &f.points {
                grow(p.x, p.y);
            }
        }
    }
    if w.min_x > w.max_x {
        return Window {
            min_x: -50.0,
            min_y: -50.0,
            max_x: 50.0,
            max_y: 50.0,
        };
    }
    let m = if margin.is_finite() {
        margin.max(0.0)
    } else {
        0.0
    };
    // At least 40 m across.
    let cx = 0.5 * (w.min_x + w.max_x);
    let cy = 0.5 * (w.min_y + w.max_y);
    let hx = (0.5 * (w.max_x - w.min_x) + m).max(20.0);
    let hy = (0.5 * (w.max_y - w.min_y) + m).max(20.0);
    Window {
        min_x: cx - hx,
        min_y: cy - hy,
        max_x: cx + hx,
        max_y: cy + hy,
    }
}

fn compose(scene: &Scene, options: &RenderOptions) -> Result<Picture, RenderError> {
    let steps = scene.num_steps();
    let step = options.step.unwrap_or(scene.current_step);
    if step >= steps {
        return Err(RenderError::Step { step, steps });
    }
    let size = options.size;
    if !(64..=8192).contains(&size) {
        return Err(RenderError::Canvas(size, size));
    }
    let mut win = match options.window {
        Some(w) if w.is_usable() => w,
        _ => {
            let fit = fit_window(scene, options.margin);
            match options.radius.filter(|r| r.is_finite() && *r > 1.0) {
                Some(r) => {
                    let centre = scene
                        .sdc_index
                        .and_then(|i| scene.tracks.get(i))
                        .and_then(|t| t.states.get(step))
                        .filter(|s| s.valid)
                        .map(|s| (s.x, s.y))
                        .unwrap_or((0.5 * (fit.min_x + fit.max_x), 0.5 * (fit.min_y + fit.max_y)));
                    Window {
                        min_x: centre.0 - r,
                        min_y: centre.1 - r,
                        max_x: centre.0 + r,
                        max_y: centre.1 + r,
                    }
                }
                None => fit,
            }
        }
    };
    // Keep the aspect between 0.6 and 1.4 by widening the window.
    let ww = win.max_x - win.min_x;
    let wh = win.max_y - win.min_y;
    let aspect = (wh / ww).clamp(0.6, 1.4);
    if wh / ww > aspect {
        let extra = 0.5 * (wh / aspect - ww);
        win.min_x -= extra;
        win.max_x += extra;
    } else if wh / ww < aspect {
        let extra = 0.5 * (ww * aspect - wh);
        win.min_y -= extra;
        win.max_y += extra;
    }
    let map_w = size;
    let map_h = ((size as f32) * aspect).round() as u32;
    let scale = map_w as f32 / (win.max_x - win.min_x);
    let view = View {
        min_x: win.min_x,
        max_y: win.max_y,
        scale,
        w: map_w as f32,
        h: map_h as f32,
    };
    let (header, panel) = if options.legend {
        (HEADER, PANEL_WIDTH)
    } else {
        (0, 0)
    };
    let mut pic = Picture {
        width: map_w + panel,
        height: map_h + header,
        map_origin: (0.0, header as f32),
        map_size: (map_w, map_h),
        map: Vec::new(),
        overlay: Vec::new(),
    };
    draw_map(scene, &view, step, &mut pic.map);
    if options.trajectories {
        draw_trajectories(scene, &view, step, &mut pic.map);
    }
    draw_agents(scene, &view, step, &mut pic.map);
    if options.legend {
        draw_overlay(scene, &view, step, &mut pic);
    }
    Ok(pic)
}

fn polyline(view: &View, pts: &[MapPoint]) -> Vec<(f32, f32)> {
    pts.iter().map(|p| view.pt(p)).collect()
}

/// `pts` shifted by `d` pixels to the left of their direction.
fn offset_px(pts: &[(f32, f32)], d: f32) -> Vec<(f32, f32)> {
    let n = pts.len();
    (0..n)
        .map(|i| {
            let a = pts[i.saturating_sub(1)];
            let b = pts[(i + 1).min(n - 1)];
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let l = (dx * dx + dy * dy).sqrt().max(1e-6);
            // Screen y points down, so "left" of travel is (dy, -dx).
            (pts[i].0 + d * dy / l, pts[i].1 - d * dx / l)
        })
        .collect()
}

fn draw_map(scene: &Scene, view: &View, step: usize, out: &mut Vec<Prim>) {
    let pad = 50.0;
    let visible = |f: &MapFeature| -> Option<Vec<(f32, f32)>> {
        let pts = polyline(view, &f.points);
        (!pts.is_empty() && view.visible(&pts, pad)).then_some(pts)
    };
    // 1. Drivable surface under everything.
    for f in &scene.map {
        if let MapFeatureKind::Lane(t) = f.kind
            && let Some(pts) = visible(f)
        {
            let bike = t == crate::scenario::LaneType::BikeLane;
            out.push(Prim::Line {
                pts,
                color: if bike { BIKE_ASPHALT } else { ASPHALT },
                width: view.len(if bike { 1.8 } else { 3.7 }, 2.0),
                dash: None,
            });
        }
    }
    // 2. Areas.
    for f in &scene.map {
        let Some(pts) = visible(f) else { continue };
        match f.kind {
            MapFeatureKind::Driveway => out.push(Prim::Poly {
                pts,
                fill: Some(DRIVEWAY),
                stroke: Some((EDGE.alpha(120), 1.0)),
            }),
            MapFeatureKind::SpeedBump => out.push(Prim::Poly {
                pts,
                fill: Some(BUMP.alpha(220)),
                stroke: Some((OUTLINE.alpha(160), 1.0)),
            }),
            MapFeatureKind::Crosswalk => crosswalk(view, &pts, out),
            _ => {}
        }
    }
    // 3. Lane centre lines.
    for f in &scene.map {
        if matches!(f.kind, MapFeatureKind::Lane(_))
            && let Some(pts) = visible(f)
        {
            out.push(Prim::Line {
                pts,
                color: LANE_LINE,
                width: 1.0,
                dash: None,
            });
        }
    }
    // 4. Painted lines.
    let dash = (view.len(3.0, 4.0), view.len(6.0, 4.0));
    for f in &scene.map {
        let MapFeatureKind::RoadLine(t) = f.kind else {
            continue;
        };
        let Some(pts) = visible(f) else { continue };
        use RoadLineType::*;
        let (color, double, broken) = match t {
            Unknown => (WHITE.alpha(170), false, false),
            BrokenSingleWhite => (WHITE, false, true),
            SolidSingleWhite => (WHITE, false, false),
            SolidDoubleWhite => (WHITE, true, false),
            BrokenSingleYellow => (YELLOW, false, true),
            BrokenDoubleYellow => (YELLOW, true, true),
            SolidSingleYellow => (YELLOW, false, false),
            SolidDoubleYellow => (YELLOW, true, false),
            PassingDoubleYellow => (YELLOW, true, false),
        };
        let width = view.len(0.15, 1.2);
        let d = if broken { Some(dash) } else { None };
        if double {
            let sep = view.len(0.2, 1.2);
            out.push(Prim::Line {
                pts: offset_px(&pts, sep),
                color,
                width,
                dash: d,
            });
            // A passing line is broken on one side.
            let other = if t == PassingDoubleYellow {
                Some(dash)
            } else {
                d
            };
            out.push(Prim::Line {
                pts: offset_px(&pts, -sep),
                color,
                width,
                dash: other,
            });
        } else {
            out.push(Prim::Line {
                pts,
                color,
                width,
                dash: d,
            });
        }
    }
    // 5. Road edges.
    for f in &scene.map {
        if matches!(f.kind, MapFeatureKind::RoadEdge(_))
            && let Some(pts) = visible(f)
        {
            out.push(Prim::Line {
                pts,
                color: EDGE,
                width: view.len(0.35, 2.2),
                dash: None,
            });
        }
    }
    // 6. Stop signs.
    for f in &scene.map {
        if f.kind == MapFeatureKind::StopSign
            && let Some(p) = f.points.first()
        {
            let c = view.pt(p);
            if view.visible(&[c], pad) {
                octagon(c, view.len(1.1, 7.5), out);
            }
        }
    }
    // 7. Traffic lights at their stop points.
    if let Some(lights) = scene.signals.get(step) {
        for s in lights {
            let c = view.pt(&s.stop_point);
            if !view.visible(&[c], pad) {
                continue;
            }
            signal(c, view.len(0.9, 4.5), s.state, out);
        }
    }
}

fn crosswalk(view: &View, pts: &[(f32, f32)], out: &mut Vec<Prim>) {
    out.push(Prim::Poly {
        pts: pts.to_vec(),
        fill: Some(WHITE.alpha(50)),
        stroke: None,
    });
    if pts.len() != 4 {
        out.push(Prim::Poly {
            pts: pts.to_vec(),
            fill: None,
            stroke: Some((WHITE, 1.5)),
        });
        return;
    }
    let d = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    // Stripes run across the long side, repeated along it.
    let (p0, p1, p2, p3) = if d(pts[0], pts[1]) >= d(pts[1], pts[2]) {
        (pts[0], pts[1], pts[2], pts[3])
    } else {
        (pts[1], pts[2], pts[3], pts[0])
    };
    let long = d(p0, p1);
    let stripe = view.len(0.6, 2.0);
    let n = ((long / (2.0 * stripe)).floor() as usize).max(1);
    let lerp =
        |a: (f32, f32), b: (f32, f32), t: f32| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
    for k in 0..n {
        let t0 = (2 * k) as f32 * stripe / long + 0.5 * (long - (2 * n - 1) as f32 * stripe) / long;
        let t1 = t0 + stripe / long;
        if t1 > 1.0 {
            break;
        }
        out.push(Prim::Poly {
            pts: vec![
                lerp(p0, p1, t0),
                lerp(p0, p1, t1),
                lerp(p3, p2, t1),
                lerp(p3, p2, t0),
            ],
            fill: Some(WHITE.alpha(235)),
            stroke: None,
        });
    }
}

fn octagon(c: (f32, f32), r: f32, out: &mut Vec<Prim>) {
    let pts = (0..8)
        .map(|k| {
            let a = std::f32::consts::PI / 8.0 + k as f32 * std::f32::consts::FRAC_PI_4;
            (c.0 + r * a.cos(), c.1 + r * a.sin())
        })
        .collect();
    out.push(Prim::Poly {
        pts,
        fill: Some(STOP_RED),
        stroke: Some((WHITE, (0.18 * r).max(1.0))),
    });
}

fn signal_color(state: SignalState) -> Rgba {
    use SignalState::*;
    match state {
        Go | ArrowGo => LIGHT_GO,
        Caution | ArrowCaution | FlashingCaution => LIGHT_CAUTION,
        Stop | ArrowStop | FlashingStop => LIGHT_STOP,
        Unknown => LIGHT_UNKNOWN,
    }
}

fn signal(c: (f32, f32), r: f32, state: SignalState, out: &mut Vec<Prim>) {
    let color = signal_color(state);
    let arrow = matches!(
        state,
        SignalState::ArrowGo | SignalState::ArrowCaution | SignalState::ArrowStop
    );
    if arrow {
        out.push(Prim::Poly {
            pts: vec![
                (c.0, c.1 - 1.2 * r),
                (c.0 + 1.1 * r, c.1 + 0.8 * r),
                (c.0 - 1.1 * r, c.1 + 0.8 * r),
            ],
            fill: Some(color),
            stroke: Some((OUTLINE, 1.0)),
        });
    } else {
        out.push(Prim::Circle {
            c,
            r,
            fill: color,
            stroke: Some((OUTLINE, 1.0)),
        });
    }
}

fn type_color(t: ObjectType) -> Rgba {
    match t {
        ObjectType::Vehicle => VEHICLE,
        ObjectType::Pedestrian => PEDESTRIAN,
        ObjectType::Cyclist => CYCLIST,
        ObjectType::Other | ObjectType::Unset => OTHER,
    }
}

fn draw_trajectories(scene: &Scene, view: &View, step: usize, out: &mut Vec<Prim>) {
    for (i, t) in scene.tracks.iter().enumerate() {
        let sdc = scene.sdc_index == Some(i);
        let color = if sdc { SDC } else { type_color(t.object_type) };
        let pts = |range: std::ops::Range<usize>| -> Vec<Vec<(f32, f32)>> {
            // Split at invalid steps.
            let mut runs = vec![Vec::new()];
            for s in &t.states[range] {
                if s.valid {
                    if let Some(r) = runs.last_mut() {
                        r.push(view.px(s.x, s.y));
                    }
                } else if runs.last().is_some_and(|r| !r.is_empty()) {
                    runs.push(Vec::new());
                }
            }
            runs.retain(|r| r.len() >= 2);
            runs
        };
        let n = t.states.len();
        for run in pts(step.min(n)..n) {
            out.push(Prim::Line {
                pts: run,
                color: color.alpha(if sdc { 150 } else { 95 }),
                width: if sdc { 2.5 } else { 1.6 },
                dash: None,
            });
        }
        for run in pts(0..(step + 1).min(n)) {
            out.push(Prim::Line {
                pts: run,
                color: color.alpha(235),
                width: if sdc { 3.0 } else { 2.0 },
                dash: None,
            });
        }
    }
}

fn draw_agents(scene: &Scene, view: &View, step: usize, out: &mut Vec<Prim>) {
    // The self-driving car last, on top.
    let mut order: Vec<usize> = (0..scene.tracks.len())
        .filter(|&i| Some(i) != scene.sdc_index)
        .collect();
    order.extend(scene.sdc_index);
    for i in order {
        let Some(t) = scene.tracks.get(i) else {
            continue;
        };
        let Some(s) = t.states.get(step).filter(|s| s.valid) else {
            continue;
        };
        let sdc = scene.sdc_index == Some(i);
        let color = if sdc { SDC } else { type_color(t.object_type) };
        let c = view.px(s.x, s.y);
        // Heading on screen: y is flipped.
        let (hc, hs) = (s.heading.cos(), -s.heading.sin());
        let min = if t.object_type == ObjectType::Pedestrian {
            6.0
        } else {
            3.0
        };
        let hl = 0.5 * view.len(s.length, min);
        let hw = 0.5 * view.len(s.width, min);
        let corner = |a: f32, b: f32| (c.0 + a * hc - b * hs, c.1 + a * hs + b * hc);
        let pts = vec![
            corner(hl, hw),
            corner(-hl, hw),
            corner(-hl, -hw),
            corner(hl, -hw),
        ];
        if !view.visible(&pts, 10.0) {
            continue;
        }
        out.push(Prim::Poly {
            pts,
            fill: Some(color),
            stroke: Some(if sdc { (WHITE, 2.5) } else { (OUTLINE, 1.2) }),
        });
        // Heading tick from the centre to the front.
        out.push(Prim::Line {
            pts: vec![c, corner(hl + 0.15 * hl.max(4.0), 0.0)],
            color: OUTLINE,
            width: if sdc { 2.2 } else { 1.6 },
            dash: None,
        });
    }
}

fn counts(scene: &Scene, step: usize) -> [(ObjectType, usize); 4] {
    let mut c = [
        (ObjectType::Vehicle, 0),
        (ObjectType::Pedestrian, 0),
        (ObjectType::Cyclist, 0),
        (ObjectType::Other, 0),
    ];
    for t in &scene.tracks {
        if t.valid_at(step) {
            let k = match t.object_type {
                ObjectType::Vehicle => 0,
                ObjectType::Pedestrian => 1,
                ObjectType::Cyclist => 2,
                _ => 3,
            };
            c[k].1 += 1;
        }
    }
    c
}

fn text(x: f32, y: f32, scale: f32, color: Rgba, s: impl Into<String>) -> Prim {
    Prim::Text {
        x,
        y,
        scale,
        color,
        text: s.into(),
        anchor: Anchor::Start,
    }
}

fn draw_overlay(scene: &Scene, view: &View, step: usize, pic: &mut Picture) {
    let out = &mut pic.overlay;
    let (mw, mh) = (pic.map_size.0 as f32, pic.map_size.1 as f32);
    let top = pic.map_origin.1;
    // Header.
    out.push(Prim::Poly {
        pts: vec![
            (0.0, 0.0),
            (pic.width as f32, 0.0),
            (pic.width as f32, top),
            (0.0, top),
        ],
        fill: Some(PANEL),
        stroke: None,
    });
    let secs = step as f32 * crate::scenario::STEP_SECONDS;
    out.push(text(
        10.0,
        9.0,
        2.0,
        TEXT,
        format!(
            "{}   step {step}/{} (t = {secs:.1} s)",
            scene.id,
            scene.num_steps().saturating_sub(1)
        ),
    ));
    // Side panel.
    let x0 = mw;
    out.push(Prim::Poly {
        pts: vec![
            (x0, top),
            (pic.width as f32, top),
            (pic.width as f32, top + mh),
            (x0, top + mh),
        ],
        fill: Some(PANEL),
        stroke: None,
    });
    out.push(Prim::Line {
        pts: vec![(x0, 0.0), (x0, top + mh)],
        color: Rgba::hex(0xc8ccd2),
        width: 1.0,
        dash: None,
    });
    let lx = x0 + 14.0;
    let mut y = top + 14.0;
    let line_h = 22.0;
    out.push(text(lx, y, 2.0, TEXT, "agents now"));
    y += line_h;
    for (t, n) in counts(scene, step) {
        if n > 0 || t != ObjectType::Other {
            out.push(text(lx, y, 2.0, TEXT, format!("{:<11}{n:>4}", t.name())));
            y += line_h;
        }
    }
    out.push(text(
        lx,
        y,
        2.0,
        TEXT,
        format!("{:<11}{:>4}", "to predict", scene.tracks_to_predict.len()),
    ));
    y += line_h + 10.0;
    out.push(text(lx, y, 2.0, TEXT, "legend"));
    y += line_h;
    let sw = 34.0;
    let mid = |y: f32| y + 6.0;
    let box_swatch = |out: &mut Vec<Prim>, y: f32, color: Rgba, stroke: (Rgba, f32)| {
        out.push(Prim::Poly {
            pts: vec![
                (lx, mid(y) - 6.0),
                (lx + 22.0, mid(y) - 6.0),
                (lx + 22.0, mid(y) + 6.0),
                (lx, mid(y) + 6.0),
            ],
            fill: Some(color),
            stroke: Some(stroke),
        });
    };
    let entries: [(&str, u8); 16] = [
        ("vehicle", 0),
        ("self-driving", 1),
        ("pedestrian", 2),
        ("cyclist", 3),
        ("past / future", 4),
        ("lane", 5),
        ("white line", 6),
        ("yellow line", 7),
        ("broken line", 8),
        ("road edge", 9),
        ("crosswalk", 10),
        ("speed bump", 11),
        ("driveway", 12),
        ("stop sign", 13),
        ("signal", 14),
        ("arrow light", 15),
    ];
    for (label, kind) in entries {
        let seg = |color: Rgba, width: f32, dash: Option<(f32, f32)>| Prim::Line {
            pts: vec![(lx, mid(y)), (lx + sw, mid(y))],
            color,
            width,
            dash,
        };
        let asphalt = Prim::Line {
            pts: vec![(lx - 2.0, mid(y)), (lx + sw + 2.0, mid(y))],
            color: ASPHALT,
            width: 12.0,
            dash: None,
        };
        match kind {
            0 => box_swatch(out, y, VEHICLE, (OUTLINE, 1.2)),
            1 => box_swatch(out, y, SDC, (OUTLINE, 2.0)),
            2 => box_swatch(out, y, PEDESTRIAN, (OUTLINE, 1.2)),
            3 => box_swatch(out, y, CYCLIST, (OUTLINE, 1.2)),
            4 => {
                out.push(Prim::Line {
                    pts: vec![(lx, mid(y)), (lx + 0.5 * sw, mid(y))],
                    color: VEHICLE.alpha(235),
                    width: 2.0,
                    dash: None,
                });
                out.push(Prim::Line {
                    pts: vec![(lx + 0.5 * sw, mid(y)), (lx + sw, mid(y))],
                    color: VEHICLE.alpha(95),
                    width: 2.0,
                    dash: None,
                });
            }
            5 => {
                out.push(asphalt);
                out.push(seg(LANE_LINE, 1.0, None));
            }
            6 => {
                out.push(asphalt);
                out.push(seg(WHITE, 2.0, None));
            }
            7 => {
                out.push(asphalt);
                out.push(seg(YELLOW, 2.0, None));
            }
            8 => {
                out.push(asphalt);
                out.push(seg(WHITE, 2.0, Some((5.0, 4.0))));
            }
            9 => out.push(seg(EDGE, 3.0, None)),
            10 => {
                out.push(asphalt);
                for k in 0..4 {
                    let x = lx + 2.0 + 8.0 * k as f32;
                    out.push(Prim::Poly {
                        pts: vec![
                            (x, mid(y) - 5.0),
                            (x + 4.0, mid(y) - 5.0),
                            (x + 4.0, mid(y) + 5.0),
                            (x, mid(y) + 5.0),
                        ],
                        fill: Some(WHITE),
                        stroke: None,
                    });
                }
            }
            11 => box_swatch(out, y, BUMP.alpha(220), (OUTLINE.alpha(160), 1.0)),
            12 => box_swatch(out, y, DRIVEWAY, (EDGE.alpha(120), 1.0)),
            13 => octagon((lx + 10.0, mid(y)), 7.0, out),
            14 => {
                for (k, st) in [SignalState::Go, SignalState::Caution, SignalState::Stop]
                    .into_iter()
                    .enumerate()
                {
                    signal((lx + 5.0 + 12.0 * k as f32, mid(y)), 5.0, st, out);
                }
            }
            _ => signal((lx + 10.0, mid(y)), 5.5, SignalState::ArrowGo, out),
        }
        out.push(text(lx + sw + 16.0, y, 2.0, TEXT, label));
        y += line_h;
    }
    // Scale bar, bottom left of the map.
    let target = 0.22 * mw / view.scale;
    let mut nice = 1.0f32;
    for p in 0..6 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f32.powi(p);
            if v <= target {
                nice = v;
            }
        }
    }
    let bar = nice * view.scale;
    let bx = 14.0;
    let by = top + mh - 16.0;
    out.push(Prim::Poly {
        pts: vec![
            (bx - 8.0, by - 24.0),
            (bx + bar + 8.0 + 80.0, by - 24.0),
            (bx + bar + 88.0, by + 8.0),
            (bx - 8.0, by + 8.0),
        ],
        fill: Some(PANEL),
        stroke: Some((Rgba::hex(0xc8ccd2), 1.0)),
    });
    out.push(Prim::Line {
        pts: vec![(bx, by), (bx + bar, by)],
        color: TEXT,
        width: 3.0,
        dash: None,
    });
    for x in [bx, bx + bar] {
        out.push(Prim::Line {
            pts: vec![(x, by - 7.0), (x, by + 2.0)],
            color: TEXT,
            width: 2.0,
            dash: None,
        });
    }
    out.push(text(
        bx + bar + 10.0,
        by - 16.0,
        2.0,
        TEXT,
        format!("{nice} m"),
    ));
    let _ = scene;
}

// ---------------------------------------------------------------------------------
// PNG back end.

fn path_of(pts: &[(f32, f32)], close: bool) -> Option<tiny_skia::Path> {
    let mut pb = PathBuilder::new();
    let (first, rest) = pts.split_first()?;
    pb.move_to(first.0, first.1);
    for p in rest {
        pb.line_to(p.0, p.1);
    }
    if close {
        pb.close();
    }
    pb.finish()
}

fn stroke(width: f32, dash: Option<(f32, f32)>) -> Stroke {
    Stroke {
        width,
        line_cap: if dash.is_some() {
            LineCap::Butt
        } else {
            LineCap::Round
        },
        line_join: LineJoin::Round,
        dash: dash.and_then(|(on, off)| StrokeDash::new(vec![on, off], 0.0)),
        ..Stroke::default()
    }
}

fn raster(pm: &mut Pixmap, prims: &[Prim], dx: f32, dy: f32) {
    let tf = Transform::from_translate(dx, dy);
    for p in prims {
        match p {
            Prim::Line {
                pts,
                color,
                width,
                dash,
            } => {
                if let Some(path) = path_of(pts, false) {
                    pm.stroke_path(&path, &color.paint(), &stroke(*width, *dash), tf, None);
                }
            }
            Prim::Poly {
                pts,
                fill,
                stroke: st,
            } => {
                if let Some(path) = path_of(pts, true) {
                    if let Some(f) = fill {
                        pm.fill_path(&path, &f.paint(), FillRule::Winding, tf, None);
                    }
                    if let Some((c, w)) = st {
                        pm.stroke_path(&path, &c.paint(), &stroke(*w, None), tf, None);
                    }
                }
            }
            Prim::Circle {
                c,
                r,
                fill,
                stroke: st,
            } => {
                if let Some(path) = PathBuilder::from_circle(c.0, c.1, *r) {
                    pm.fill_path(&path, &fill.paint(), FillRule::Winding, tf, None);
                    if let Some((sc, w)) = st {
                        pm.stroke_path(&path, &sc.paint(), &stroke(*w, None), tf, None);
                    }
                }
            }
            Prim::Text {
                x,
                y,
                scale,
                color,
                text,
                anchor,
            } => {
                let x0 = match anchor {
                    Anchor::Start => *x,
                };
                let mut paint = color.paint();
                paint.anti_alias = false;
                crate::plot::draw_text(pm, x0 + dx, y + dy, text, *scale, &paint);
            }
        }
    }
}

impl Picture {
    fn to_png(&self) -> Result<Vec<u8>, RenderError> {
        let mut canvas = Pixmap::new(self.width, self.height)
            .ok_or(RenderError::Canvas(self.width, self.height))?;
        let (mw, mh) = self.map_size;
        let mut map = Pixmap::new(mw, mh).ok_or(RenderError::Canvas(mw, mh))?;
        map.fill(tiny_skia::Color::from_rgba8(
            BACKGROUND.0,
            BACKGROUND.1,
            BACKGROUND.2,
            255,
        ));
        raster(&mut map, &self.map, 0.0, 0.0);
        canvas.draw_pixmap(
            self.map_origin.0 as i32,
            self.map_origin.1 as i32,
            map.as_ref(),
            &PixmapPaint::default(),
            Transform::identity(),
            None,
        );
        raster(&mut canvas, &self.overlay, 0.0, 0.0);
        // The canvas is opaque: encode RGB at the best compression, which with
        // adaptive filtering is about a third smaller than tiny-skia's default RGBA.
        let mut rgb = Vec::with_capacity(canvas.pixels().len() * 3);
        for p in canvas.pixels() {
            let c = p.demultiply();
            rgb.extend_from_slice(&[c.red(), c.green(), c.blue()]);
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let encode = |e: png::EncodingError| RenderError::Encode(e.to_string());
        let mut writer = enc.write_header().map_err(encode)?;
        writer.write_image_data(&rgb).map_err(encode)?;
        writer.finish().map_err(encode)?;
        Ok(out)
    }

    fn to_svg(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#,
            w = self.width,
            h = self.height
        );
        let (mw, mh) = self.map_size;
        let _ = writeln!(
            s,
            r#"<svg x="{}" y="{}" width="{mw}" height="{mh}" viewBox="0 0 {mw} {mh}" overflow="hidden">"#,
            self.map_origin.0, self.map_origin.1
        );
        let _ = writeln!(
            s,
            r#"<rect width="{mw}" height="{mh}" fill="{}"/>"#,
            BACKGROUND.svg()
        );
        svg_prims(&mut s, &self.map);
        s.push_str("</svg>\n");
        svg_prims(&mut s, &self.overlay);
        s.push_str("</svg>\n");
        s
    }
}

// ---------------------------------------------------------------------------------
// SVG back end.

fn svg_points(pts: &[(f32, f32)]) -> String {
    let mut s = String::with_capacity(pts.len() * 12);
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{:.1},{:.1}", p.0, p.1);
    }
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn svg_prims(s: &mut String, prims: &[Prim]) {
    for p in prims {
        match p {
            Prim::Line {
                pts,
                color,
                width,
                dash,
            } => {
                let dash = dash
                    .map(|(a, b)| format!(r#" stroke-dasharray="{a:.1} {b:.1}""#))
                    .unwrap_or_default();
                let cap = if dash.is_empty() { "round" } else { "butt" };
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-opacity="{:.2}" stroke-width="{width:.2}" stroke-linecap="{cap}" stroke-linejoin="round"{dash}/>"#,
                    svg_points(pts),
                    color.svg(),
                    color.opacity()
                );
            }
            Prim::Poly { pts, fill, stroke } => {
                let fill = match fill {
                    Some(c) => format!(r#"fill="{}" fill-opacity="{:.2}""#, c.svg(), c.opacity()),
                    None => r#"fill="none""#.to_string(),
                };
                let stroke = match stroke {
                    Some((c, w)) => format!(
                        r#" stroke="{}" stroke-opacity="{:.2}" stroke-width="{w:.2}" stroke-linejoin="round""#,
                        c.svg(),
                        c.opacity()
                    ),
                    None => String::new(),
                };
                let _ = writeln!(
                    s,
                    r#"<polygon points="{}" {fill}{stroke}/>"#,
                    svg_points(pts)
                );
            }
            Prim::Circle { c, r, fill, stroke } => {
                let stroke = match stroke {
                    Some((sc, w)) => format!(r#" stroke="{}" stroke-width="{w:.2}""#, sc.svg()),
                    None => String::new(),
                };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="{r:.2}" fill="{}" fill-opacity="{:.2}"{stroke}/>"#,
                    c.0,
                    c.1,
                    fill.svg(),
                    fill.opacity()
                );
            }
            Prim::Text {
                x,
                y,
                scale,
                color,
                text,
                anchor,
            } => {
                let a = match anchor {
                    Anchor::Start => "start",
                };
                // The bitmap glyph box is 7 units high from `y`; SVG text sits on a
                // baseline.
                let _ = writeln!(
                    s,
                    r#"<text x="{x:.1}" y="{:.1}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{:.1}" fill="{}" text-anchor="{a}" xml:space="preserve">{}</text>"#,
                    y + 7.0 * scale,
                    8.6 * scale,
                    color.svg(),
                    escape(text)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::synthetic::{Layout, LayoutMix, SyntheticConfig, generate};

    fn scene() -> Scene {
        let config = SyntheticConfig {
            layouts: LayoutMix::only(Layout::FourWay),
            signal_probability: 1.0,
            burn_in_steps: 20,
            ..SyntheticConfig::default()
        };
        generate(&config, 11)
    }

    #[test]
    fn png_and_svg_render_the_same_scene() {
        let s = scene();
        let opts = RenderOptions {
            size: 320,
            ..RenderOptions::default()
        };
        let png = render_png(&s, &opts).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = render_svg(&s, &opts).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(&s.id) && svg.contains("<polygon") && svg.contains("<circle"));
        // Self-driving car colour is used.
        assert!(svg.contains(&SDC.svg()));
        // The PNG actually shows the agents: the SDC magenta appears in pixels.
        let decoded = Pixmap::decode_png(&png).unwrap();
        let magenta = decoded
            .pixels()
            .iter()
            .filter(|p| p.red() == SDC.0 && p.green() == SDC.1 && p.blue() == SDC.2)
            .count();
        assert!(magenta > 10, "{magenta}");
    }

    #[test]
    fn bad_requests_are_errors() {
        let s = scene();
        let e = render_png(
            &s,
            &RenderOptions {
                step: Some(91),
                ..RenderOptions::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("step 91"), "{e}");
        let e = render_png(
            &s,
            &RenderOptions {
                size: 3,
                ..RenderOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, RenderError::Canvas(..)));
        let dir = tempfile::tempdir().unwrap();
        let e =
            render_to_file(&s, &RenderOptions::default(), &dir.path().join("x.jpg")).unwrap_err();
        assert!(e.to_string().contains(".png or .svg"), "{e}");
        // A scene with no agents and no map still renders.
        let empty = Scene {
            tracks: vec![],
            map: vec![],
            sdc_index: None,
            tracks_to_predict: vec![],
            ..s
        };
        let svg = render_to_file(&empty, &RenderOptions::default(), &dir.path().join("e.svg"));
        assert!(svg.is_ok());
    }
}
