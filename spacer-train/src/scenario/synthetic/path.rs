//! Polylines parametrised by arc length, and the curve builders the road generator
//! uses (reference lines of straights, arcs and clothoid-like transitions; cubic
//! Bézier connectors; resampling).
//!
//! Everything samples at about one point per metre, the density of WOMD polylines
//! after GPUDrive's collinear-point pruning keeps curves smooth.

use spacer_core::geometry::Vec2;
use spacer_core::math::wrap_angle;

/// Sampling step of every generated polyline (metres).
pub(crate) const SPACING: f32 = 1.0;

/// A polyline with cumulative arc length, so that positions and headings can be read
/// at any distance `s` along it. At least two distinct points.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pts: Vec<Vec2>,
    cum: Vec<f32>,
    /// Heading at each vertex (the mean of the adjacent segment headings).
    tangents: Vec<f32>,
}

impl Path {
    /// A path through `points`; consecutive duplicates are dropped, and a path of
    /// fewer than two distinct points becomes a 1 mm stub so that every query is
    /// defined.
    pub(crate) fn new(points: Vec<Vec2>) -> Self {
        let mut pts: Vec<Vec2> = Vec::with_capacity(points.len());
        for p in points {
            if pts.last().is_none_or(|q| (p - *q).norm() > 1e-3) {
                pts.push(p);
            }
        }
        match pts.len() {
            0 => pts = vec![Vec2::ZERO, Vec2::new(1e-3, 0.0)],
            1 => {
                let p = pts[0];
                pts.push(p + Vec2::new(1e-3, 0.0));
            }
            _ => {}
        }
        let mut cum = Vec::with_capacity(pts.len());
        let mut acc = 0.0f32;
        cum.push(0.0);
        let mut seg_heading = Vec::with_capacity(pts.len() - 1);
        for w in pts.windows(2) {
            let d = w[1] - w[0];
            acc += d.norm();
            cum.push(acc);
            seg_heading.push(d.angle());
        }
        let n = pts.len();
        let mut tangents = Vec::with_capacity(n);
        tangents.push(seg_heading[0]);
        for i in 1..n - 1 {
            let a = seg_heading[i - 1];
            let b = seg_heading[i];
            tangents.push(wrap_angle(a + 0.5 * wrap_angle(b - a)));
        }
        tangents.push(seg_heading[n - 2]);
        Self { pts, cum, tangents }
    }

    /// Total length.
    pub(crate) fn len(&self) -> f32 {
        self.cum[self.cum.len() - 1]
    }

    /// The vertices.
    pub(crate) fn points(&self) -> &[Vec2] {
        &self.pts
    }

    /// Vertex headings.
    pub(crate) fn tangents(&self) -> &[f32] {
        &self.tangents
    }

    /// Segment index and fraction along it for distance `s` (the fraction leaves
    /// `[0, 1]` beyond the ends, which extrapolates linearly).
    fn locate(&self, s: f32) -> (usize, f32) {
        let n = self.pts.len();
        let i = self
            .cum
            .partition_point(|c| *c <= s)
            .saturating_sub(1)
            .min(n - 2);
        let l = self.cum[i + 1] - self.cum[i];
        (i, if l > 0.0 { (s - self.cum[i]) / l } else { 0.0 })
    }

    /// The point at distance `s` (extrapolated along the end segments beyond the ends).
    pub(crate) fn point_at(&self, s: f32) -> Vec2 {
        let (i, f) = self.locate(s);
        self.pts[i] + (self.pts[i + 1] - self.pts[i]) * f
    }

    /// The heading at distance `s`, interpolated between vertex tangents.
    pub(crate) fn heading_at(&self, s: f32) -> f32 {
        let (i, f) = self.locate(s);
        let f = f.clamp(0.0, 1.0);
        let a = self.tangents[i];
        wrap_angle(a + f * wrap_angle(self.tangents[i + 1] - a))
    }

    /// The vertex index (with fraction) at distance `s`: parallel lanes built on one
    /// reference line share stations, which maps positions between them.
    pub(crate) fn station_at(&self, s: f32) -> f32 {
        let (i, f) = self.locate(s);
        i as f32 + f
    }

    /// The distance at station `st` (see [`Path::station_at`]).
    pub(crate) fn s_at_station(&self, st: f32) -> f32 {
        let n = self.pts.len();
        let i = (st.max(0.0) as usize).min(n - 2);
        let f = st - i as f32;
        self.cum[i] + f * (self.cum[i + 1] - self.cum[i])
    }

    /// Projects `p` onto the path: (distance along, signed lateral offset, positive to
    /// the left). Brute force over the segments.
    pub(crate) fn project(&self, p: Vec2) -> (f32, f32) {
        let mut best = (f32::INFINITY, 0.0f32, 0.0f32);
        for (i, w) in self.pts.windows(2).enumerate() {
            let d = w[1] - w[0];
            let l2 = d.norm_sq();
            let t = if l2 > 0.0 {
                ((p - w[0]).dot(d) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let q = w[0] + d * t;
            let dist2 = (p - q).norm_sq();
            if dist2 < best.0 {
                let side = d.cross(p - w[0]).signum();
                best = (
                    dist2,
                    self.cum[i] + t * (self.cum[i + 1] - self.cum[i]),
                    side * dist2.sqrt(),
                );
            }
        }
        (best.1, best.2)
    }

    /// Unsigned curvature at each vertex (1/m).
    pub(crate) fn curvature(&self) -> Vec<f32> {
        let n = self.pts.len();
        let mut k = vec![0.0; n];
        for (i, ki) in k.iter_mut().enumerate().take(n - 1).skip(1) {
            let h0 = (self.pts[i] - self.pts[i - 1]).angle();
            let h1 = (self.pts[i + 1] - self.pts[i]).angle();
            let ds = 0.5 * (self.cum[i + 1] - self.cum[i - 1]);
            if ds > 1e-4 {
                *ki = wrap_angle(h1 - h0).abs() / ds;
            }
        }
        if n > 2 {
            k[0] = k[1];
            k[n - 1] = k[n - 2];
        }
        k
    }

    /// Distance at vertex `i`.
    pub(crate) fn s_at_vertex(&self, i: usize) -> f32 {
        self.cum[i.min(self.cum.len() - 1)]
    }
}

/// A reference line: points with unit left normals, from which parallel lanes, lines
/// and edges are offset so that they share stations.
#[derive(Clone, Debug)]
pub(crate) struct RefLine {
    /// Points, [`SPACING`] apart.
    pub(crate) pts: Vec<Vec2>,
    /// Unit normals pointing left of the direction of travel.
    pub(crate) normals: Vec<Vec2>,
}

impl RefLine {
    /// A reference line along `pts`.
    pub(crate) fn from_points(pts: Vec<Vec2>) -> Self {
        let path = Path::new(pts);
        let normals = path
            .tangents()
            .iter()
            .map(|&t| Vec2::new(-t.sin(), t.cos()))
            .collect();
        Self {
            pts: path.points().to_vec(),
            normals,
        }
    }

    /// Integrates a chain of pieces `(length, end curvature)` from `start` heading
    /// `heading`; curvature changes linearly along each piece (a clothoid-like
    /// transition), so a piece with the same end curvature as the last is an arc.
    pub(crate) fn integrate(start: Vec2, heading: f32, pieces: &[(f32, f32)]) -> Self {
        let mut pts = vec![start];
        let (mut p, mut h, mut k) = (start, heading, 0.0f32);
        for &(len, k_end) in pieces {
            let steps = (len / SPACING).ceil().max(1.0) as usize;
            let ds = len / steps as f32;
            let k0 = k;
            for j in 0..steps {
                let kk = k0 + (k_end - k0) * (j as f32 + 0.5) / steps as f32;
                let hm = h + 0.5 * kk * ds;
                p = p + Vec2::from_angle(hm) * ds;
                h += kk * ds;
                pts.push(p);
            }
            k = k_end;
        }
        Self::from_points(pts)
    }

    /// Number of stations.
    pub(crate) fn len(&self) -> usize {
        self.pts.len()
    }

    /// The point at station `i` offset by `d` to the left.
    pub(crate) fn offset_point(&self, i: usize, d: f32) -> Vec2 {
        let i = i.min(self.pts.len() - 1);
        self.pts[i] + self.normals[i] * d
    }

    /// Points of stations `range`, each offset by `offset(station)`.
    pub(crate) fn offset(
        &self,
        range: std::ops::Range<usize>,
        offset: impl Fn(usize) -> f32,
    ) -> Vec<Vec2> {
        let end = range.end.min(self.pts.len());
        (range.start.min(end)..end)
            .map(|i| self.offset_point(i, offset(i)))
            .collect()
    }

    /// Heading of the line at station `i`.
    pub(crate) fn heading(&self, i: usize) -> f32 {
        let n = self.normals[i.min(self.normals.len() - 1)];
        // The normal is the tangent turned left by 90 degrees.
        Vec2::new(n.y, -n.x).angle()
    }
}

/// Samples the cubic Bézier `p0..p3` at about [`SPACING`] by arc length.
pub(crate) fn cubic_bezier(p0: Vec2, p1: Vec2, p2: Vec2, p3: Vec2) -> Vec<Vec2> {
    const N: usize = 64;
    let eval = |t: f32| {
        let u = 1.0 - t;
        p0 * (u * u * u) + p1 * (3.0 * u * u * t) + p2 * (3.0 * u * t * t) + p3 * (t * t * t)
    };
    let dense: Vec<Vec2> = (0..=N).map(|i| eval(i as f32 / N as f32)).collect();
    resample(&dense, SPACING)
}

/// Resamples a polyline at about `spacing` by arc length (end points kept).
pub(crate) fn resample(points: &[Vec2], spacing: f32) -> Vec<Vec2> {
    if points.len() < 2 {
        return points.to_vec();
    }
    let path = Path::new(points.to_vec());
    let n = (path.len() / spacing).round().max(1.0) as usize;
    (0..=n)
        .map(|i| path.point_at(path.len() * i as f32 / n as f32))
        .collect()
}

/// A connector curve from `a` (heading `ha`) to `b` (heading `hb`): a cubic Bézier
/// whose control points lie on the tangents. When the tangents meet ahead of both
/// ends, the control arms reach `reach` of the way to the meeting point (0.6 is
/// between a circular arc's 0.55 and a parabola's 0.67; larger values hug the corner,
/// as right turns round a kerb do); otherwise a third of the chord.
pub(crate) fn connector_curve(a: Vec2, ha: f32, b: Vec2, hb: f32, reach: f32) -> Vec<Vec2> {
    let ta = Vec2::from_angle(ha);
    let tb = Vec2::from_angle(hb);
    let chord = (b - a).norm();
    let denom = ta.cross(tb);
    let (ka, kb) = if denom.abs() > 0.15 {
        // a + t * ta = b - u * tb.
        let t = (b - a).cross(tb) / denom;
        let u = -(b - a).cross(ta) / denom;
        if t > 0.0 && u > 0.0 && t < 2.0 * chord && u < 2.0 * chord {
            (reach * t, reach * u)
        } else {
            (chord / 3.0, chord / 3.0)
        }
    } else {
        (chord / 3.0, chord / 3.0)
    };
    cubic_bezier(a, a + ta * ka, b - tb * kb, b)
}

/// Smallest distance between the vertices of two polylines.
pub(crate) fn min_vertex_distance(a: &[Vec2], b: &[Vec2]) -> f32 {
    let mut best = f32::INFINITY;
    for p in a {
        for q in b {
            best = best.min((*p - *q).norm_sq());
        }
    }
    best.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_length_queries() {
        let p = Path::new(vec![
            Vec2::new(0.0, 0.0),
            Vec2::new(1.0, 0.0),
            Vec2::new(1.0, 0.0),
            Vec2::new(1.0, 2.0),
        ]);
        assert_eq!(p.points().len(), 3);
        assert!((p.len() - 3.0).abs() < 1e-6);
        let q = p.point_at(2.0);
        assert!((q.x - 1.0).abs() < 1e-6 && (q.y - 1.0).abs() < 1e-6);
        assert!((p.heading_at(3.0) - std::f32::consts::FRAC_PI_2).abs() < 1e-5);
        let (s, d) = p.project(Vec2::new(0.5, 0.3));
        assert!((s - 0.5).abs() < 1e-5 && (d - 0.3).abs() < 1e-5);
        let (_, d) = p.project(Vec2::new(1.5, 1.0));
        assert!((d + 0.5).abs() < 1e-5, "right of the path is negative");
        assert!((p.s_at_station(p.station_at(2.5)) - 2.5).abs() < 1e-5);
        // Degenerate input still answers.
        let stub = Path::new(vec![Vec2::new(3.0, 3.0)]);
        assert!(stub.len() > 0.0 && stub.point_at(10.0).is_finite());
    }

    #[test]
    fn reference_arc_has_the_requested_curvature() {
        let r = 50.0;
        let line = RefLine::integrate(
            Vec2::ZERO,
            0.0,
            &[(20.0, 1.0 / r), (60.0, 1.0 / r), (20.0, 0.0)],
        );
        let path = Path::new(line.pts.clone());
        let k = path.curvature();
        let mid = k.len() / 2;
        assert!((k[mid] - 1.0 / r).abs() < 2e-3, "{}", k[mid]);
        // Offsetting to the left of a left turn shortens the line.
        let inner = Path::new(line.offset(0..line.len(), |_| 3.0));
        assert!(inner.len() < path.len());
        // A quarter turn: the curve passes inside the tangents' corner (10, 0), about
        // as far from it as a circular arc of radius 10 would (4.1 m).
        let c = connector_curve(
            Vec2::ZERO,
            0.0,
            Vec2::new(10.0, 10.0),
            std::f32::consts::FRAC_PI_2,
            0.6,
        );
        let cp = Path::new(c);
        assert!(cp.len() > 15.0 && cp.len() < 16.5, "{}", cp.len());
        let mid = cp.point_at(0.5 * cp.len());
        let inside = (mid - Vec2::new(10.0, 0.0)).norm();
        assert!((3.2..4.6).contains(&inside), "{inside}");
    }
}
