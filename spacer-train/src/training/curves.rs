//! Training curves: a table of named series by step, written as CSV and drawn as a
//! PNG (tiny-skia; panels with axes, tick labels in a built-in 5x7 pixel font, one
//! coloured line per series and a legend).

use std::path::Path;

use serde::{Deserialize, Serialize};
use tiny_skia::{Color, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

use crate::error::{DataError, Location};

/// Named series sampled at steps; `None` where a series has no value at a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// Series names (CSV columns after `step`).
    pub names: Vec<String>,
    /// `(step, one value per name)`.
    pub rows: Vec<(u64, Vec<Option<f64>>)>,
}

/// One panel of the plot: a title and the series (by name) drawn in it.
#[derive(Clone, Copy, Debug)]
pub struct Panel<'a> {
    /// Title, drawn above the panel.
    pub title: &'a str,
    /// Series names.
    pub series: &'a [&'a str],
}

impl Curves {
    /// Empty curves with these series.
    pub fn new(names: &[&str]) -> Self {
        Self {
            names: names.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; `values` pairs names with values (unknown names are ignored).
    pub fn push(&mut self, step: u64, values: &[(&str, f64)]) {
        let mut row = vec![None; self.names.len()];
        for (name, v) in values {
            if let Some(i) = self.names.iter().position(|n| n == name) {
                row[i] = v.is_finite().then_some(*v);
            }
        }
        self.rows.push((step, row));
    }

    /// The points of one series.
    pub fn series(&self, name: &str) -> Vec<(f64, f64)> {
        let Some(i) = self.names.iter().position(|n| n == name) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|(s, r)| r.get(i).copied().flatten().map(|v| (*s as f64, v)))
            .collect()
    }

    /// The CSV text: a `step,...` header, then one line per row (empty cells where
    /// a value is missing).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("step");
        for n in &self.names {
            s.push(',');
            s.push_str(n);
        }
        s.push('\n');
        for (step, row) in &self.rows {
            s.push_str(&step.to_string());
            for v in row {
                s.push(',');
                if let Some(v) = v {
                    s.push_str(&format!("{v:.6}"));
                }
            }
            s.push('\n');
        }
        s
    }

    /// Writes the CSV atomically.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn write_csv(&self, path: &Path) -> Result<(), DataError> {
        crate::fsutil::write_atomic(path, self.to_csv().as_bytes())
    }

    /// Draws the panels side by side and writes a PNG atomically.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file, [`DataError::Invalid`] if encoding fails.
    pub fn write_png(&self, path: &Path, panels: &[Panel<'_>]) -> Result<(), DataError> {
        let png = self
            .render(panels)
            .and_then(|p| p.encode_png().ok())
            .ok_or_else(|| {
                DataError::invalid(path, Location::file(), "could not draw the curves")
            })?;
        crate::fsutil::write_atomic(path, &png)
    }

    /// Draws the panels in rows of at most three.
    pub fn render(&self, panels: &[Panel<'_>]) -> Option<Pixmap> {
        const W: f32 = 420.0;
        const H: f32 = 300.0;
        let n = panels.len().max(1);
        let cols = n.min(3);
        let rows = n.div_ceil(cols);
        let mut pm = Pixmap::new((W * cols as f32) as u32, (H * rows as f32) as u32)?;
        pm.fill(Color::WHITE);
        for (i, panel) in panels.iter().enumerate() {
            let (x0, y0) = (W * (i % cols) as f32, H * (i / cols) as f32);
            self.draw_panel(&mut pm, panel, (x0, y0), W, H);
        }
        Some(pm)
    }

    fn draw_panel(&self, pm: &mut Pixmap, panel: &Panel<'_>, origin: (f32, f32), w: f32, h: f32) {
        let (x0, y0) = origin;
        let (left, right, top, bottom) = (x0 + 62.0, x0 + w - 14.0, y0 + 28.0, y0 + h - 34.0);
        let data: Vec<Vec<(f64, f64)>> = panel.series.iter().map(|s| self.series(s)).collect();
        let all = data.iter().flatten();
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in all {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
        if xmin > xmax {
            (xmin, xmax, ymin, ymax) = (0.0, 1.0, 0.0, 1.0);
        }
        if xmax - xmin < 1e-12 {
            xmax = xmin + 1.0;
        }
        if ymax - ymin < 1e-12 {
            ymax = ymin + 1.0;
        }
        let pad = 0.05 * (ymax - ymin);
        let (ymin, ymax) = (ymin - pad, ymax + pad);
        let sx = |x: f64| left + ((x - xmin) / (xmax - xmin)) as f32 * (right - left);
        let sy = |y: f64| bottom - ((y - ymin) / (ymax - ymin)) as f32 * (bottom - top);
        let grey = Color::from_rgba8(200, 200, 200, 255);
        let black = Color::from_rgba8(40, 40, 40, 255);
        for i in 0..=4 {
            let f = i as f64 / 4.0;
            let y = ymin + f * (ymax - ymin);
            line(pm, left, sy(y), right, sy(y), grey, 1.0);
            text(pm, x0 + 4.0, sy(y) - 3.0, &tick(y), black, 1.0);
            let x = xmin + f * (xmax - xmin);
            line(pm, sx(x), top, sx(x), bottom, grey, 1.0);
            let label = tick(x);
            text(
                pm,
                sx(x) - 3.0 * label.len() as f32,
                bottom + 6.0,
                &label,
                black,
                1.0,
            );
        }
        line(pm, left, bottom, right, bottom, black, 1.5);
        line(pm, left, top, left, bottom, black, 1.5);
        // The title at double size when it fits the panel, else at the font's size.
        let scale = if 12.0 * panel.title.len() as f32 <= w - 70.0 {
            2.0
        } else {
            1.0
        };
        text(pm, left, y0 + 8.0, panel.title, black, scale);
        text(pm, right - 24.0, bottom + 20.0, "step", black, 1.0);
        for (k, pts) in data.iter().enumerate() {
            let c = palette(k);
            if pts.len() >= 2 {
                let mut pb = PathBuilder::new();
                pb.move_to(sx(pts[0].0), sy(pts[0].1));
                for &(x, y) in &pts[1..] {
                    pb.line_to(sx(x), sy(y));
                }
                if let Some(path) = pb.finish() {
                    stroke(pm, &path, c, 2.0);
                }
            } else if let Some(&(x, y)) = pts.first() {
                dot(pm, sx(x), sy(y), c);
            }
        }
        // The legend, on a white box over the lines.
        let longest = panel.series.iter().map(|s| s.len()).max().unwrap_or(0);
        let legend_w = 6.0 * longest as f32 + 26.0;
        let legend_x = right - legend_w;
        let legend_h = 12.0 * panel.series.len() as f32 + 4.0;
        if let Some(r) = Rect::from_xywh(legend_x - 4.0, top + 2.0, legend_w + 2.0, legend_h) {
            let bg = paint(Color::from_rgba8(255, 255, 255, 235));
            pm.fill_rect(r, &bg, Transform::identity(), None);
        }
        for (k, name) in panel.series.iter().enumerate() {
            let ly = top + 6.0 + 12.0 * k as f32;
            line(
                pm,
                legend_x,
                ly + 3.0,
                legend_x + 16.0,
                ly + 3.0,
                palette(k),
                2.0,
            );
            text(pm, legend_x + 22.0, ly, name, black, 1.0);
        }
    }
}

fn palette(k: usize) -> Color {
    let (r, g, b) = crate::plot::PALETTE[k % crate::plot::PALETTE.len()];
    Color::from_rgba8(r, g, b, 255)
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || v == v.trunc() && a >= 1.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn paint(c: Color) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(c);
    p.anti_alias = true;
    p
}

fn stroke(pm: &mut Pixmap, path: &tiny_skia::Path, c: Color, width: f32) {
    let s = Stroke {
        width,
        ..Stroke::default()
    };
    pm.stroke_path(path, &paint(c), &s, Transform::identity(), None);
}

fn line(pm: &mut Pixmap, x0: f32, y0: f32, x1: f32, y1: f32, c: Color, width: f32) {
    let mut pb = PathBuilder::new();
    pb.move_to(x0, y0);
    pb.line_to(x1, y1);
    if let Some(p) = pb.finish() {
        stroke(pm, &p, c, width);
    }
}

fn dot(pm: &mut Pixmap, x: f32, y: f32, c: Color) {
    if let Some(r) = Rect::from_xywh(x - 2.0, y - 2.0, 4.0, 4.0) {
        pm.fill_rect(r, &paint(c), Transform::identity(), None);
    }
}

/// Draws `s` with the bitmap font, `scale` pixels per font pixel, top-left at (x, y).
fn text(pm: &mut Pixmap, x: f32, y: f32, s: &str, c: Color, scale: f32) {
    crate::plot::draw_text(pm, x, y, s, scale, &paint(c));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_png() {
        let mut c = Curves::new(&["train_loss", "heldout_loss"]);
        c.push(0, &[("train_loss", 5.0)]);
        c.push(10, &[("train_loss", 4.0), ("heldout_loss", 4.5)]);
        c.push(20, &[("train_loss", f64::NAN), ("nope", 1.0)]);
        assert_eq!(
            c.to_csv(),
            "step,train_loss,heldout_loss\n0,5.000000,\n10,4.000000,4.500000\n20,,\n"
        );
        assert_eq!(c.series("train_loss"), vec![(0.0, 5.0), (10.0, 4.0)]);
        let panels = [Panel {
            title: "loss",
            series: &["train_loss", "heldout_loss"],
        }];
        let pm = c.render(&panels).unwrap();
        assert_eq!((pm.width(), pm.height()), (420, 300));
        // Four panels: rows of three.
        let four = c.render(&[panels[0]; 4]).unwrap();
        assert_eq!((four.width(), four.height()), (1260, 600));
        // Something other than white was drawn.
        assert!(pm.pixels().iter().any(|p| p.red() < 100));
        let dir = tempfile::tempdir().unwrap();
        c.write_png(&dir.path().join("c.png"), &panels).unwrap();
        let bytes = std::fs::read(dir.path().join("c.png")).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
