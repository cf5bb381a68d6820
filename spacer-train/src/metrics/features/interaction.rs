//! Object-object features: signed distance to the nearest object, collisions and time
//! to collision, as the official `interaction_features` defines them.
//!
//! **Signed distance.** Each object is a 2D rectangle with rounded corners (since the
//! 2024 challenge): its box shrunk on every side by `s = 0.7 * min(length, width) / 2`
//! (the "core"), inflated back by `s` isotropically. The distance between two such
//! shapes is the signed distance between their cores minus both shrinking distances
//! ([`rounded_box_distance`]). The distance between two cores A and B is the signed
//! distance from the origin to their Minkowski difference A + (-B), an eight-sided
//! convex polygon: positive (the gap) when apart, negative (minus the penetration depth)
//! when they overlap. For sharp boxes this is what
//! `spacer_core::geometry::OrientedBox::signed_distance` computes too, but the official
//! code builds the polygon from corners in world coordinates in `f32`, where WOMD's
//! coordinates (about 8 km from the origin) carry a rounding of about 5e-4 m; to
//! reproduce its values to 1e-4 this module follows the same construction step by step
//! ([`box_corners`], [`box_signed_distance`]), and rounds the corners as officially
//! (which spacer-core's boxes do not).
//!
//! **Nearest object.** For each evaluated object and step, the minimum over every other
//! simulated object valid at that step; 1e10 when there is none or when the object
//! itself is invalid. A collision is a distance below 0.
//!
//! **Time to collision.** For each evaluated ("ego") object, the objects it follows:
//! ahead of its front (longitudinal gap > 0 from the ego's front to the other's nearest
//! corner), laterally overlapping its straight trail, with a heading difference of at
//! most 75 degrees (at most 10 degrees when the lateral overlap is under 0.5 m). Of
//! those valid at the step, the nearest ahead; the time is gap / (ego speed - its
//! speed) when the ego is faster, capped at 5 s, and 5 s otherwise. Speeds are the
//! planar central-difference speeds. As officially, the heading difference is the
//! absolute difference of raw headings (not wrapped) and the ego's own validity is not
//! checked (the scoring masks invalid steps).

/// Distance used for invalid pairs (the official `EXTREMELY_LARGE_DISTANCE`).
pub const EXTREMELY_LARGE_DISTANCE: f32 = 1e10;
/// Distances below this are collisions.
pub const COLLISION_DISTANCE_THRESHOLD: f32 = 0.0;
/// How much of a box's corners are rounded: 0 sharp, 1 a capsule (the official
/// `CORNER_ROUNDING_FACTOR`).
pub const CORNER_ROUNDING_FACTOR: f32 = 0.7;

/// How far a box is shrunk on every side to its core: `min(length, width) * 0.7 / 2`.
pub fn shrinking_distance(length: f32, width: f32) -> f32 {
    length.min(width) * CORNER_ROUNDING_FACTOR / 2.0
}

/// The core of a box: the corners of the box shrunk by [`shrinking_distance`] on every
/// side, and that distance.
pub fn box_core(cx: f32, cy: f32, length: f32, width: f32, heading: f32) -> ([[f32; 2]; 4], f32) {
    let s = shrinking_distance(length, width);
    (
        box_corners(cx, cy, length - 2.0 * s, width - 2.0 * s, heading),
        s,
    )
}

/// Signed distance between two rounded boxes given by their cores.
pub fn rounded_box_distance(a: &([[f32; 2]; 4], f32), b: &([[f32; 2]; 4], f32)) -> f32 {
    box_signed_distance(&a.0, &b.0) - a.1 - b.1
}
/// Time to collision cap and value when no collision is ahead (s).
pub const MAXIMUM_TIME_TO_COLLISION: f32 = 5.0;

/// The official heading tolerance for following (75 degrees), as an `f32`.
pub fn max_heading_diff() -> f32 {
    75.0f64.to_radians() as f32
}

/// The stricter heading tolerance for small lateral overlaps (10 degrees).
pub fn max_heading_diff_small_overlap() -> f32 {
    10.0f64.to_radians() as f32
}

/// Lateral overlap (m) under which the stricter heading tolerance applies.
pub const SMALL_OVERLAP_THRESHOLD: f32 = 0.5;

/// The four bottom corners of a box in world coordinates, counter-clockwise from
/// front-left: `R(heading) * (±l/2, ±w/2) + centre`, each product and sum rounded to
/// `f32` in the official order.
pub fn box_corners(cx: f32, cy: f32, length: f32, width: f32, heading: f32) -> [[f32; 2]; 4] {
    let (s, c) = heading.sin_cos();
    let l2 = length * 0.5;
    let w2 = width * 0.5;
    [(l2, w2), (-l2, w2), (-l2, -w2), (l2, -w2)].map(|(lx, ly)| {
        let rx = c * lx + (-s) * ly;
        let ry = s * lx + c * ly;
        [rx + cx, ry + cy]
    })
}

/// Index of the lowest corner (first on ties) and the unit direction of the edge that
/// leaves it counter-clockwise.
fn downmost_edge(b: &[[f32; 2]; 4]) -> (usize, [f32; 2]) {
    let mut k = 0;
    for i in 1..4 {
        if b[i][1] < b[k][1] {
            k = i;
        }
    }
    let e = b[(k + 1) % 4];
    let d = [e[0] - b[k][0], e[1] - b[k][1]];
    let len = (d[0] * d[0] + d[1] * d[1]).sqrt();
    (k, [d[0] / len, d[1] / len])
}

/// The Minkowski sum of two counter-clockwise boxes, counter-clockwise from the sum of
/// their lowest corners (the official `minkowski_sum_of_box_and_box_points`).
pub fn minkowski_sum(a: &[[f32; 2]; 4], b: &[[f32; 2]; 4]) -> [[f32; 2]; 8] {
    const ORDER_1: [usize; 8] = [0, 0, 1, 1, 2, 2, 3, 3];
    const ORDER_2: [usize; 8] = [0, 1, 1, 2, 2, 3, 3, 0];
    let (sa, da) = downmost_edge(a);
    let (sb, db) = downmost_edge(b);
    let left_turn = da[0] * db[1] - da[1] * db[0] >= 0.0;
    let (oa, ob) = if left_turn {
        (ORDER_2, ORDER_1)
    } else {
        (ORDER_1, ORDER_2)
    };
    let mut out = [[0.0f32; 2]; 8];
    for i in 0..8 {
        let p = a[(oa[i] + sa) % 4];
        let q = b[(ob[i] + sb) % 4];
        out[i] = [p[0] + q[0], p[1] + q[1]];
    }
    out
}

/// Signed distance from the origin to a convex counter-clockwise polygon: negative
/// inside (the official `signed_distance_from_point_to_convex_polygon` with the query
/// point at the origin).
pub fn origin_signed_distance(poly: &[[f32; 2]; 8]) -> f32 {
    let mut inside = true;
    let mut best = f32::INFINITY;
    for i in 0..8 {
        let p = poly[i];
        let q = poly[(i + 1) % 8];
        let e = [q[0] - p[0], q[1] - p[1]];
        let len = (e[0] * e[0] + e[1] * e[1]).sqrt();
        let t = [e[0] / len, e[1] / len];
        let n = [-t[1], t[0]];
        let v = [0.0 - p[0], 0.0 - p[1]];
        let vertex = (v[0] * v[0] + v[1] * v[1]).sqrt();
        let perp = -n[0] * v[0] + -n[1] * v[1];
        inside &= perp <= 0.0;
        let along = (t[0] * v[0] + t[1] * v[1]) / len;
        let edge = if (0.0..=1.0).contains(&along) {
            perp.abs()
        } else {
            f32::INFINITY
        };
        best = best.min(edge).min(vertex);
    }
    if inside { -best } else { best }
}

/// Signed distance between two boxes given by their corners (negative when they
/// overlap).
pub fn box_signed_distance(a: &[[f32; 2]; 4], b: &[[f32; 2]; 4]) -> f32 {
    let neg_b = b.map(|p| [-p[0], -p[1]]);
    origin_signed_distance(&minkowski_sum(a, &neg_b))
}

/// One object's box and speed at one step, for time to collision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TtcBox {
    /// Centre x.
    pub x: f32,
    /// Centre y.
    pub y: f32,
    /// Length.
    pub length: f32,
    /// Width.
    pub width: f32,
    /// Heading.
    pub heading: f32,
    /// Planar speed (may be NaN at the ends of a series).
    pub speed: f32,
    /// Whether the object is valid at the step.
    pub valid: bool,
}

/// Time to collision of `ego` with the object it follows among `others` (which may
/// include the ego itself; it never qualifies as ahead of itself). Ties between equally
/// near objects go to the first, as `argmin` does.
pub fn time_to_collision(ego: &TtcBox, others: &[TtcBox]) -> f32 {
    let max75 = max_heading_diff();
    let max10 = max_heading_diff_small_overlap();
    let (rs, rc) = (-ego.heading).sin_cos();
    let mut best = f32::INFINITY;
    let mut best_speed = f32::NAN;
    for o in others {
        let yaw_diff = (o.heading - ego.heading).abs();
        let (ys, yc) = yaw_diff.sin_cos();
        let half_l = o.length / 2.0;
        let half_w = o.width / 2.0;
        let long_offset = half_l * yc.abs() + half_w * ys.abs();
        let lat_offset = half_l * ys.abs() + half_w * yc.abs();
        let dx = o.x - ego.x;
        let dy = o.y - ego.y;
        let rel_x = rc * dx - rs * dy;
        let rel_y = rs * dx + rc * dy;
        let long = rel_x - ego.length / 2.0 - long_offset;
        let lat = rel_y.abs() - ego.width / 2.0 - lat_offset;
        let following = long > 0.0
            && yaw_diff <= max75
            && lat < 0.0
            && (lat < -SMALL_OVERLAP_THRESHOLD || yaw_diff <= max10);
        let masked = if o.valid && following {
            long
        } else {
            long + EXTREMELY_LARGE_DISTANCE
        };
        // `argmin`: the first minimum.
        if masked < best {
            best = masked;
            best_speed = o.speed;
        }
    }
    let rel_speed = ego.speed - best_speed;
    if rel_speed > 0.0 {
        (best / rel_speed).min(MAXIMUM_TIME_TO_COLLISION)
    } else {
        MAXIMUM_TIME_TO_COLLISION
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use spacer_core::geometry::{OrientedBox, Pose};

    fn bx(x: f32, y: f32, l: f32, w: f32, h: f32) -> [[f32; 2]; 4] {
        box_corners(x, y, l, w, h)
    }

    #[test]
    fn distances_of_simple_boxes() {
        // Two unit squares side by side, 1 m apart.
        let a = bx(0.0, 0.0, 1.0, 1.0, 0.0);
        let b = bx(2.0, 0.0, 1.0, 1.0, 0.0);
        assert!((box_signed_distance(&a, &b) - 1.0).abs() < 1e-6);
        // Overlapping by 0.25 m along x.
        let c = bx(0.75, 0.0, 1.0, 1.0, 0.0);
        assert!((box_signed_distance(&a, &c) + 0.25).abs() < 1e-6);
        // Diagonal gap: corner to corner.
        let d = bx(2.0, 2.0, 1.0, 1.0, 0.0);
        assert!((box_signed_distance(&a, &d) - 2f32.sqrt()).abs() < 1e-6);
        // Rotated.
        let e = bx(3.0, 0.0, 2.0, 1.0, std::f32::consts::FRAC_PI_2);
        assert!((box_signed_distance(&a, &e) - 2.0).abs() < 1e-5);
    }

    proptest! {
        /// Near the origin (no world-coordinate rounding) the official construction and
        /// spacer-core's separating-axis distance agree.
        #[test]
        fn matches_the_core_geometry_near_the_origin(
            ax in -5.0f32..5.0, ay in -5.0f32..5.0, ah in -3.2f32..3.2,
            bx_ in -5.0f32..5.0, by in -5.0f32..5.0, bh in -3.2f32..3.2,
            al in 0.5f32..5.0, aw in 0.5f32..3.0, bl in 0.5f32..5.0, bw in 0.5f32..3.0,
        ) {
            let a = bx(ax, ay, al, aw, ah);
            let b = bx(bx_, by, bl, bw, bh);
            let ours = box_signed_distance(&a, &b);
            let core = OrientedBox::new(Pose::new(ax, ay, ah), al, aw)
                .signed_distance(&OrientedBox::new(Pose::new(bx_, by, bh), bl, bw));
            prop_assert!((ours - core).abs() < 2e-4, "ours {} core {}", ours, core);
            let sym = box_signed_distance(&b, &a);
            prop_assert!((ours - sym).abs() < 2e-4);
        }
    }

    fn tb(x: f32, y: f32, heading: f32, speed: f32) -> TtcBox {
        TtcBox {
            x,
            y,
            length: 4.0,
            width: 2.0,
            heading,
            speed,
            valid: true,
        }
    }

    #[test]
    fn time_to_collision_follows_the_leader() {
        let ego = tb(0.0, 0.0, 0.0, 10.0);
        // Leader 14 m ahead centre to centre: 10 m bumper gap, closing at 5 m/s.
        let lead = tb(14.0, 0.0, 0.0, 5.0);
        let t = time_to_collision(&ego, &[ego, lead]);
        assert!((t - 2.0).abs() < 1e-5, "{t}");
        // Slower ego: no collision.
        let slow = tb(0.0, 0.0, 0.0, 4.0);
        assert_eq!(time_to_collision(&slow, &[slow, lead]), 5.0);
        // Leader far ahead: capped.
        let far = tb(100.0, 0.0, 0.0, 5.0);
        assert_eq!(time_to_collision(&ego, &[far]), 5.0);
        // Beside, not ahead; behind; crossing at 90 degrees: ignored.
        let beside = tb(0.0, 3.0, 0.0, 0.0);
        let behind = tb(-10.0, 0.0, 0.0, 0.0);
        let crossing = tb(10.0, 0.0, std::f32::consts::FRAC_PI_2, 0.0);
        assert_eq!(time_to_collision(&ego, &[beside, behind, crossing]), 5.0);
        // Invalid leader: ignored.
        let mut ghost = lead;
        ghost.valid = false;
        assert_eq!(time_to_collision(&ego, &[ghost]), 5.0);
        // The nearer of two leaders counts.
        let near = tb(9.0, 0.5, 0.05, 0.0);
        let t = time_to_collision(&ego, &[lead, near]);
        assert!(t < 0.6, "{t}");
        // Small lateral overlap needs tight heading alignment.
        let edge = tb(10.0, 3.8, 0.3, 0.0);
        assert_eq!(time_to_collision(&ego, &[edge]), 5.0);
    }
}
