//! Planar geometry: vectors, poses, oriented boxes and segments.
//!
//! Everything is `f32`, in metres and radians, in a right-handed frame with yaw measured
//! counter-clockwise from +x. An agent's local frame has +x forward and +y to its left.
//!
//! The distance functions never panic: non-finite input propagates to a non-finite
//! result (callers validate at their boundary), and degenerate shapes (zero-length
//! segments, zero-size boxes) have well-defined distances.

use core::ops::{Add, Mul, Neg, Sub};

use crate::math::{atan2, cos, hypot, sin, sqrt, wrap_angle};

/// A 2D vector or point.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[repr(C)]
pub struct Vec2 {
    /// x (metres).
    pub x: f32,
    /// y (metres).
    pub y: f32,
}

impl Vec2 {
    /// The origin.
    pub const ZERO: Vec2 = Vec2 { x: 0.0, y: 0.0 };

    /// A vector from components.
    #[inline]
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    /// Unit vector at angle `a`.
    #[inline]
    pub fn from_angle(a: f32) -> Self {
        Self::new(cos(a), sin(a))
    }

    /// Dot product.
    #[inline]
    pub fn dot(self, o: Vec2) -> f32 {
        self.x * o.x + self.y * o.y
    }

    /// z component of the 3D cross product.
    #[inline]
    pub fn cross(self, o: Vec2) -> f32 {
        self.x * o.y - self.y * o.x
    }

    /// Squared length.
    #[inline]
    pub fn norm_sq(self) -> f32 {
        self.dot(self)
    }

    /// Length.
    #[inline]
    pub fn norm(self) -> f32 {
        hypot(self.x, self.y)
    }

    /// Angle from +x, in `(-PI, PI]`.
    #[inline]
    pub fn angle(self) -> f32 {
        atan2(self.y, self.x)
    }

    /// Rotates by the angle whose cosine and sine are `c` and `s`.
    #[inline]
    pub fn rotate_cs(self, c: f32, s: f32) -> Vec2 {
        Vec2::new(c * self.x - s * self.y, s * self.x + c * self.y)
    }

    /// Rotates by `a` radians.
    #[inline]
    pub fn rotate(self, a: f32) -> Vec2 {
        self.rotate_cs(cos(a), sin(a))
    }

    /// True when both components are finite.
    #[inline]
    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

impl Add for Vec2 {
    type Output = Vec2;
    #[inline]
    fn add(self, o: Vec2) -> Vec2 {
        Vec2::new(self.x + o.x, self.y + o.y)
    }
}

impl Sub for Vec2 {
    type Output = Vec2;
    #[inline]
    fn sub(self, o: Vec2) -> Vec2 {
        Vec2::new(self.x - o.x, self.y - o.y)
    }
}

impl Mul<f32> for Vec2 {
    type Output = Vec2;
    #[inline]
    fn mul(self, k: f32) -> Vec2 {
        Vec2::new(self.x * k, self.y * k)
    }
}

impl Neg for Vec2 {
    type Output = Vec2;
    #[inline]
    fn neg(self) -> Vec2 {
        Vec2::new(-self.x, -self.y)
    }
}

/// A position and a heading: an agent's pose, or a rigid transform from a local frame
/// to the frame the pose is expressed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[repr(C)]
pub struct Pose {
    /// x (metres).
    pub x: f32,
    /// y (metres).
    pub y: f32,
    /// Heading (radians, counter-clockwise from +x).
    pub yaw: f32,
}

impl Pose {
    /// The identity transform.
    pub const IDENTITY: Pose = Pose {
        x: 0.0,
        y: 0.0,
        yaw: 0.0,
    };

    /// A pose from components.
    #[inline]
    pub const fn new(x: f32, y: f32, yaw: f32) -> Self {
        Self { x, y, yaw }
    }

    /// The position.
    #[inline]
    pub fn position(self) -> Vec2 {
        Vec2::new(self.x, self.y)
    }

    /// Maps a point given in this pose's local frame to the outer frame.
    #[inline]
    pub fn to_world(self, local: Vec2) -> Vec2 {
        local.rotate(self.yaw) + self.position()
    }

    /// Maps a point of the outer frame into this pose's local frame.
    #[inline]
    pub fn to_local(self, world: Vec2) -> Vec2 {
        (world - self.position()).rotate_cs(cos(self.yaw), -sin(self.yaw))
    }

    /// The outer-frame pose of `local`, a pose given in this pose's frame
    /// (`self ∘ local`). The result's yaw is wrapped to `[-PI, PI)`.
    #[inline]
    pub fn compose(self, local: Pose) -> Pose {
        let p = self.to_world(local.position());
        Pose::new(p.x, p.y, wrap_angle(self.yaw + local.yaw))
    }

    /// `other` expressed in this pose's frame (`self⁻¹ ∘ other`); yaw wrapped.
    #[inline]
    pub fn relative(self, other: Pose) -> Pose {
        let p = self.to_local(other.position());
        Pose::new(p.x, p.y, wrap_angle(other.yaw - self.yaw))
    }

    /// True when all components are finite.
    #[inline]
    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.yaw.is_finite()
    }
}

/// An oriented rectangle: an agent's footprint.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[repr(C)]
pub struct OrientedBox {
    /// Centre.
    pub center: Vec2,
    /// Heading of the long (length) axis.
    pub yaw: f32,
    /// Extent along the heading (metres).
    pub length: f32,
    /// Extent across the heading (metres).
    pub width: f32,
}

impl OrientedBox {
    /// A box centred on `pose`.
    #[inline]
    pub fn new(pose: Pose, length: f32, width: f32) -> Self {
        Self {
            center: pose.position(),
            yaw: pose.yaw,
            length,
            width,
        }
    }

    /// Unit vectors along the length and the width.
    #[inline]
    pub fn axes(&self) -> (Vec2, Vec2) {
        let (c, s) = (cos(self.yaw), sin(self.yaw));
        (Vec2::new(c, s), Vec2::new(-s, c))
    }

    /// Corners, counter-clockwise, starting at the front-left corner
    /// (+length/2, +width/2 in the box frame).
    pub fn corners(&self) -> [Vec2; 4] {
        let (u, v) = self.axes();
        let (hl, hw) = (0.5 * self.length, 0.5 * self.width);
        let c = self.center;
        [
            c + u * hl + v * hw,
            c - u * hl + v * hw,
            c - u * hl - v * hw,
            c + u * hl - v * hw,
        ]
    }

    /// The same box with length and width scaled by `k` (GPUDrive's 0.7 collision
    /// shrink, for instance).
    #[inline]
    pub fn scaled(&self, k: f32) -> Self {
        Self {
            length: self.length * k,
            width: self.width * k,
            ..*self
        }
    }

    /// Separating-axis test: true when the boxes share any area (touching counts).
    pub fn overlaps(&self, other: &OrientedBox) -> bool {
        self.max_axis_separation(other) <= 0.0
    }

    /// The largest gap between the boxes' projections over the four face normals;
    /// negative when they overlap (then minus the penetration depth).
    fn max_axis_separation(&self, other: &OrientedBox) -> f32 {
        let (au, av) = self.axes();
        let (bu, bv) = other.axes();
        let d = other.center - self.center;
        let (ahl, ahw) = (0.5 * self.length, 0.5 * self.width);
        let (bhl, bhw) = (0.5 * other.length, 0.5 * other.width);
        let mut best = f32::NEG_INFINITY;
        for axis in [au, av, bu, bv] {
            let ra = ahl * au.dot(axis).abs() + ahw * av.dot(axis).abs();
            let rb = bhl * bu.dot(axis).abs() + bhw * bv.dot(axis).abs();
            let gap = d.dot(axis).abs() - ra - rb;
            // `max` that propagates NaN, so bad input cannot read as "overlap".
            if gap > best || gap.is_nan() {
                best = gap;
            }
        }
        best
    }

    /// Signed distance between the boxes: the Euclidean gap when apart, minus the
    /// penetration depth (the smallest translation that separates them) when they
    /// overlap. Symmetric in its arguments.
    pub fn signed_distance(&self, other: &OrientedBox) -> f32 {
        let sep = self.max_axis_separation(other);
        if sep.is_nan() {
            return f32::NAN;
        }
        if sep <= 0.0 {
            return sep;
        }
        // Apart: the closest pair of points lies on a corner of one box and an edge
        // of the other.
        let (a, b) = (self.corners(), other.corners());
        let mut best = f32::INFINITY;
        for i in 0..4 {
            let ea = Segment::new(a[i], a[(i + 1) % 4]);
            let eb = Segment::new(b[i], b[(i + 1) % 4]);
            for j in 0..4 {
                best = best.min(ea.distance_to_point(b[j]));
                best = best.min(eb.distance_to_point(a[j]));
            }
        }
        best
    }

    /// Distance from the box to a point: 0 inside, else the Euclidean gap.
    pub fn distance_to_point(&self, p: Vec2) -> f32 {
        let (u, v) = self.axes();
        let d = p - self.center;
        let dx = (d.dot(u).abs() - 0.5 * self.length).max(0.0);
        let dy = (d.dot(v).abs() - 0.5 * self.width).max(0.0);
        hypot(dx, dy)
    }

    /// True when `p` lies inside or on the box.
    pub fn contains(&self, p: Vec2) -> bool {
        let (u, v) = self.axes();
        let d = p - self.center;
        d.dot(u).abs() <= 0.5 * self.length && d.dot(v).abs() <= 0.5 * self.width
    }

    /// Distance from the box to a segment: 0 when they touch or cross.
    pub fn distance_to_segment(&self, s: &Segment) -> f32 {
        if self.contains(s.a) || self.contains(s.b) {
            return 0.0;
        }
        let c = self.corners();
        let mut best = f32::INFINITY;
        for i in 0..4 {
            let edge = Segment::new(c[i], c[(i + 1) % 4]);
            let d = edge.distance_to_segment(s);
            if d.is_nan() {
                return f32::NAN;
            }
            best = best.min(d);
        }
        best
    }

    /// Distance from the box to a polyline (consecutive points joined by segments);
    /// `+inf` for an empty polyline, the point distance for a single point.
    pub fn distance_to_polyline(&self, points: &[Vec2]) -> f32 {
        match points {
            [] => f32::INFINITY,
            [p] => self.distance_to_point(*p),
            _ => points
                .windows(2)
                .map(|w| self.distance_to_segment(&Segment::new(w[0], w[1])))
                .fold(f32::INFINITY, nan_min),
        }
    }
}

/// A line segment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Segment {
    /// Start.
    pub a: Vec2,
    /// End.
    pub b: Vec2,
}

impl Segment {
    /// A segment from its end points.
    #[inline]
    pub const fn new(a: Vec2, b: Vec2) -> Self {
        Self { a, b }
    }

    /// Length.
    #[inline]
    pub fn length(&self) -> f32 {
        (self.b - self.a).norm()
    }

    /// Midpoint.
    #[inline]
    pub fn midpoint(&self) -> Vec2 {
        (self.a + self.b) * 0.5
    }

    /// Direction angle from `a` to `b`.
    #[inline]
    pub fn angle(&self) -> f32 {
        (self.b - self.a).angle()
    }

    /// The point of the segment closest to `p`.
    pub fn closest_point(&self, p: Vec2) -> Vec2 {
        let ab = self.b - self.a;
        let len2 = ab.norm_sq();
        if len2 <= 0.0 {
            return self.a;
        }
        let t = ((p - self.a).dot(ab) / len2).clamp(0.0, 1.0);
        self.a + ab * t
    }

    /// Distance from `p` to the segment.
    #[inline]
    pub fn distance_to_point(&self, p: Vec2) -> f32 {
        let q = self.closest_point(p);
        let d = p - q;
        sqrt(d.norm_sq())
    }

    /// True when the segments share a point (collinear overlaps included).
    pub fn intersects(&self, o: &Segment) -> bool {
        let d1 = (o.b - o.a).cross(self.a - o.a);
        let d2 = (o.b - o.a).cross(self.b - o.a);
        let d3 = (self.b - self.a).cross(o.a - self.a);
        let d4 = (self.b - self.a).cross(o.b - self.a);
        if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
            && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
        {
            return true;
        }
        (d1 == 0.0 && on_segment(o, self.a))
            || (d2 == 0.0 && on_segment(o, self.b))
            || (d3 == 0.0 && on_segment(self, o.a))
            || (d4 == 0.0 && on_segment(self, o.b))
    }

    /// Distance between two segments: 0 when they intersect.
    pub fn distance_to_segment(&self, o: &Segment) -> f32 {
        if !(self.a.is_finite() && self.b.is_finite() && o.a.is_finite() && o.b.is_finite()) {
            return f32::NAN;
        }
        if self.intersects(o) {
            return 0.0;
        }
        self.distance_to_point(o.a)
            .min(self.distance_to_point(o.b))
            .min(o.distance_to_point(self.a))
            .min(o.distance_to_point(self.b))
    }
}

/// `p` lies within the bounding box of `s` (used after a collinearity test).
fn on_segment(s: &Segment, p: Vec2) -> bool {
    p.x >= s.a.x.min(s.b.x)
        && p.x <= s.a.x.max(s.b.x)
        && p.y >= s.a.y.min(s.b.y)
        && p.y <= s.a.y.max(s.b.y)
}

/// `min` that propagates NaN.
#[inline]
fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// Distance from `p` to a polyline; `+inf` when empty.
pub fn point_polyline_distance(p: Vec2, points: &[Vec2]) -> f32 {
    match points {
        [] => f32::INFINITY,
        [q] => (p - *q).norm(),
        _ => points
            .windows(2)
            .map(|w| Segment::new(w[0], w[1]).distance_to_point(p))
            .fold(f32::INFINITY, nan_min),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::f32::consts::{FRAC_PI_2, PI};
    use proptest::prelude::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn pose_round_trips() {
        let p = Pose::new(3.0, -2.0, 0.7);
        let local = Pose::new(1.5, 0.25, -0.2);
        let w = p.compose(local);
        let back = p.relative(w);
        assert!(close(back.x, local.x, 1e-5) && close(back.y, local.y, 1e-5));
        assert!(close(back.yaw, local.yaw, 1e-6));
        let q = Vec2::new(-4.0, 9.0);
        let r = p.to_world(p.to_local(q));
        assert!(close(r.x, q.x, 1e-5) && close(r.y, q.y, 1e-5));
    }

    #[test]
    fn local_frame_is_forward_left() {
        let p = Pose::new(10.0, 0.0, FRAC_PI_2); // facing +y
        let ahead = p.to_local(Vec2::new(10.0, 5.0));
        assert!(close(ahead.x, 5.0, 1e-5) && close(ahead.y, 0.0, 1e-5));
        let left = p.to_local(Vec2::new(8.0, 0.0));
        assert!(close(left.x, 0.0, 1e-5) && close(left.y, 2.0, 1e-5));
    }

    #[test]
    fn box_distances_known() {
        let a = OrientedBox::new(Pose::new(0.0, 0.0, 0.0), 4.0, 2.0);
        let b = OrientedBox::new(Pose::new(7.0, 0.0, 0.0), 4.0, 2.0);
        assert!(close(a.signed_distance(&b), 3.0, 1e-5));
        let c = OrientedBox::new(Pose::new(3.0, 0.0, 0.0), 4.0, 2.0);
        assert!(close(a.signed_distance(&c), -1.0, 1e-5));
        assert!(a.overlaps(&c) && !a.overlaps(&b));
        // Diagonal gap: corner (2,1) to corner (5,5) of a box rotated 0.
        let d = OrientedBox::new(Pose::new(7.0, 6.0, 0.0), 4.0, 2.0);
        assert!(close(a.signed_distance(&d), 5.0, 1e-5));
        // Rotated box touching by a corner.
        let e = OrientedBox::new(Pose::new(2.0 + 2f32.sqrt() * 0.5, 0.0, PI / 4.0), 1.0, 1.0);
        assert!(close(a.signed_distance(&e), 0.0, 1e-5));
    }

    #[test]
    fn box_segment_and_polyline() {
        let a = OrientedBox::new(Pose::new(0.0, 0.0, 0.0), 4.0, 2.0);
        let s = Segment::new(Vec2::new(-5.0, 3.0), Vec2::new(5.0, 3.0));
        assert!(close(a.distance_to_segment(&s), 2.0, 1e-5));
        let crossing = Segment::new(Vec2::new(-5.0, -5.0), Vec2::new(5.0, 5.0));
        assert_eq!(a.distance_to_segment(&crossing), 0.0);
        let inside = Segment::new(Vec2::new(0.1, 0.1), Vec2::new(0.2, 0.2));
        assert_eq!(a.distance_to_segment(&inside), 0.0);
        let line = [
            Vec2::new(10.0, -10.0),
            Vec2::new(10.0, 10.0),
            Vec2::new(3.0, 10.0),
        ];
        assert!(close(a.distance_to_polyline(&line), 8.0, 1e-5));
        assert_eq!(a.distance_to_polyline(&[]), f32::INFINITY);
        assert!(close(
            a.distance_to_polyline(&[Vec2::new(2.0, 4.0)]),
            3.0,
            1e-5
        ));
        assert!(close(
            point_polyline_distance(Vec2::new(10.0, 0.0), &line[..2]),
            0.0,
            1e-6
        ));
    }

    #[test]
    fn degenerate_and_nan_inputs_do_not_panic() {
        let z = OrientedBox::new(Pose::new(0.0, 0.0, 0.0), 0.0, 0.0);
        let a = OrientedBox::new(Pose::new(1.0, 0.0, 0.0), 0.0, 0.0);
        assert!(close(z.signed_distance(&a), 1.0, 1e-6));
        let seg = Segment::new(Vec2::new(1.0, 1.0), Vec2::new(1.0, 1.0));
        assert!(close(seg.distance_to_point(Vec2::ZERO), 2f32.sqrt(), 1e-6));
        let n = OrientedBox::new(Pose::new(f32::NAN, 0.0, 0.0), 1.0, 1.0);
        assert!(n.signed_distance(&a).is_nan());
        assert!(!n.overlaps(&a));
        assert!(n.distance_to_segment(&seg).is_nan());
    }

    fn arb_box() -> impl Strategy<Value = OrientedBox> {
        (
            -20.0f32..20.0,
            -20.0f32..20.0,
            -4.0f32..4.0,
            0.1f32..8.0,
            0.1f32..4.0,
        )
            .prop_map(|(x, y, yaw, l, w)| OrientedBox::new(Pose::new(x, y, yaw), l, w))
    }

    proptest! {
        #[test]
        fn signed_distance_is_symmetric(a in arb_box(), b in arb_box()) {
            let (d1, d2) = (a.signed_distance(&b), b.signed_distance(&a));
            prop_assert!(close(d1, d2, 1e-3), "{d1} vs {d2}");
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
        }

        #[test]
        fn distance_sign_matches_overlap(a in arb_box(), b in arb_box()) {
            let d = a.signed_distance(&b);
            // distance >= 0 iff no overlap (touching counts as overlap at exactly 0).
            if a.overlaps(&b) { prop_assert!(d <= 0.0) } else { prop_assert!(d > 0.0) }
        }

        #[test]
        fn separated_distance_is_a_real_gap(a in arb_box(), b in arb_box()) {
            let d = a.signed_distance(&b);
            if d > 0.0 {
                // No corner of either box is closer than d to the other box...
                for c in b.corners() { prop_assert!(a.distance_to_point(c) >= d - 1e-3); }
                for c in a.corners() { prop_assert!(b.distance_to_point(c) >= d - 1e-3); }
                // ...and growing a by a bit more than 2d in both extents closes the gap.
                let grown = OrientedBox { length: a.length + 2.0 * d + 1e-2,
                                          width: a.width + 2.0 * d + 1e-2, ..a };
                prop_assert!(grown.overlaps(&b));
            }
        }

        #[test]
        fn rigid_motion_preserves_distance(a in arb_box(), b in arb_box(),
                                           tx in -50.0f32..50.0, ty in -50.0f32..50.0, r in -4.0f32..4.0) {
            let t = Pose::new(tx, ty, r);
            let move_box = |bx: &OrientedBox| OrientedBox {
                center: t.to_world(bx.center), yaw: bx.yaw + r, ..*bx
            };
            let (d0, d1) = (a.signed_distance(&b), move_box(&a).signed_distance(&move_box(&b)));
            prop_assert!(close(d0, d1, 2e-3), "{d0} vs {d1}");
        }
    }
}
