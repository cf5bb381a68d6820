//! Distance to the road edge and off-road, as the official `map_metric_features`
//! defines them.
//!
//! WOMD road edges are polylines with the road on their left (counter-clockwise around
//! the drivable area). For a query point the official code:
//! 1. finds the nearest segment over **all** road-edge polylines by a 3D distance whose
//!    vertical part is stretched by 3 (so that an overpass's edge does not capture a
//!    point below it), ties to the first segment in file order;
//! 2. takes that segment's planar distance, signed by the side of the segment the
//!    point is on (negative on the left, the road side), except that when the point
//!    projects before the segment's start (after its end) the sign is combined with the
//!    previous (next) segment's side, by `max` at a convex corner and `min` at a
//!    concave one, so that points around a corner get the sign of the region they are
//!    in.
//!
//! A polyline whose end is within 1 m of its start is cyclic: its first segment's
//! previous segment is its last one and vice versa. The official code pads all
//! polylines to the longest one before looking up neighbours, so that wrap-around
//! only ever reaches a real segment for the longest polylines; for the others the
//! neighbour beyond an end is a padding segment and is treated as invalid (the plain
//! side sign is used). This module reproduces that behaviour exactly.
//!
//! An object's distance is the maximum over its four box corners (its most off-road
//! corner); invalid steps get -1e10. Off-road is a distance above 0.
//!
//! The nearest-segment search is exhaustive in effect but pruned: segments are grouped
//! in blocks of consecutive segments with bounding boxes, the blocks in a bounding
//! volume hierarchy, and a node is skipped only when the lower bound of its stretched
//! distance exceeds the best distance found so far by a margin larger than `f32`
//! rounding; ties are still resolved by the lowest flat index, so the result is the
//! official argmin whatever order the search visits segments in.

use crate::scenario::{MapFeatureKind, Scene};

/// Off-road when the distance exceeds this.
pub const OFFROAD_DISTANCE_THRESHOLD: f32 = 0.0;
/// Squared distance (m²) between a polyline's ends under which it is cyclic.
pub const CYCLIC_TOLERANCE_M2: f32 = 1.0;
/// Vertical stretch of the nearest-segment distance.
pub const Z_STRETCH: f32 = 3.0;
/// Value for invalid steps.
pub const INVALID_DISTANCE: f32 = -1e10;

const BLOCK: usize = 8;
/// Blocks per leaf of the hierarchy.
const LEAF: usize = 4;

#[derive(Clone, Debug)]
struct Polyline {
    points: Vec<[f32; 3]>,
    cyclic: bool,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    polyline: u32,
    first: u32,
    end: u32,
    lo: [f32; 3],
    hi: [f32; 3],
}

/// A node of the bounding volume hierarchy over blocks.
#[derive(Clone, Copy, Debug)]
struct Node {
    lo: [f32; 3],
    hi: [f32; 3],
    /// Leaf: `blocks[first..end]`; inner: children `first` and `end`.
    first: u32,
    end: u32,
    leaf: bool,
}

/// The road edges of a scene, ready for queries.
#[derive(Clone, Debug)]
pub struct RoadEdges {
    polylines: Vec<Polyline>,
    /// Points of the longest polyline (the padded length).
    max_len: usize,
    /// Blocks, in hierarchy order.
    blocks: Vec<Block>,
    /// The hierarchy; the root is the last node.
    nodes: Vec<Node>,
}

/// The stretched distance from `q` to a box: a lower bound of the distance to anything
/// inside it.
fn box_bound(lo: &[f32; 3], hi: &[f32; 3], q: [f32; 3]) -> f32 {
    let mut gap2 = 0.0f32;
    for (k, &qk) in q.iter().enumerate() {
        let g = (lo[k] - qk).max(qk - hi[k]).max(0.0);
        let g = if k == 2 { g * Z_STRETCH } else { g };
        gap2 += g * g;
    }
    gap2.sqrt()
}

/// Whether a node whose lower bound is `bound` can be skipped when the best distance
/// is `best` (with a margin well beyond `f32` rounding of the segment distances).
fn prunable(bound: f32, best: f32) -> bool {
    bound * (1.0 - 1e-5) - 1e-3 > best
}

fn union(a: &[Block]) -> ([f32; 3], [f32; 3]) {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for b in a {
        for k in 0..3 {
            lo[k] = lo[k].min(b.lo[k]);
            hi[k] = hi[k].max(b.hi[k]);
        }
    }
    (lo, hi)
}

/// Builds the hierarchy over `blocks[start..end]` (reordering them), returning the
/// node index.
fn build(blocks: &mut [Block], start: usize, nodes: &mut Vec<Node>) -> u32 {
    let (lo, hi) = union(blocks);
    if blocks.len() <= LEAF {
        nodes.push(Node {
            lo,
            hi,
            first: start as u32,
            end: (start + blocks.len()) as u32,
            leaf: true,
        });
        return (nodes.len() - 1) as u32;
    }
    let axis = if hi[0] - lo[0] >= hi[1] - lo[1] { 0 } else { 1 };
    let mid = blocks.len() / 2;
    let centre = |b: &Block| b.lo[axis] + b.hi[axis];
    blocks.select_nth_unstable_by(mid, |a, b| centre(a).total_cmp(&centre(b)));
    let (left, right) = blocks.split_at_mut(mid);
    let l = build(left, start, nodes);
    let r = build(right, start + mid, nodes);
    nodes.push(Node {
        lo,
        hi,
        first: l,
        end: r,
        leaf: false,
    });
    (nodes.len() - 1) as u32
}

/// The segment a query was matched to (a hint for the next, nearby query).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentHint {
    polyline: usize,
    segment: usize,
}

/// A candidate segment: stretched distance and flat index for ordering.
#[derive(Clone, Copy)]
struct Best {
    dist3: f32,
    flat: usize,
    polyline: usize,
    segment: usize,
}

impl RoadEdges {
    /// The road edges of `scene`, in map order (polylines of fewer than two points are
    /// skipped, as officially). `None` when the scene has none.
    pub fn from_scene(scene: &Scene) -> Option<Self> {
        let lines = scene
            .map
            .iter()
            .filter(|f| matches!(f.kind, MapFeatureKind::RoadEdge(_)))
            .map(|f| f.points.iter().map(|p| [p.x, p.y, p.z]).collect::<Vec<_>>());
        Self::from_polylines(lines)
    }

    /// Road edges from raw polylines (x, y, z per point).
    pub fn from_polylines(lines: impl IntoIterator<Item = Vec<[f32; 3]>>) -> Option<Self> {
        let mut polylines = Vec::new();
        for points in lines {
            if points.len() < 2 {
                continue;
            }
            let (a, b) = (points[0], points[points.len() - 1]);
            let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
            let cyclic = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < CYCLIC_TOLERANCE_M2;
            polylines.push(Polyline { points, cyclic });
        }
        if polylines.is_empty() {
            return None;
        }
        let max_len = polylines.iter().map(|p| p.points.len()).max().unwrap_or(0);
        let mut blocks = Vec::new();
        for (pi, p) in polylines.iter().enumerate() {
            let segs = p.points.len() - 1;
            let mut first = 0;
            while first < segs {
                let end = (first + BLOCK).min(segs);
                let mut lo = [f32::INFINITY; 3];
                let mut hi = [f32::NEG_INFINITY; 3];
                for q in &p.points[first..=end] {
                    for k in 0..3 {
                        lo[k] = lo[k].min(q[k]);
                        hi[k] = hi[k].max(q[k]);
                    }
                }
                blocks.push(Block {
                    polyline: pi as u32,
                    first: first as u32,
                    end: end as u32,
                    lo,
                    hi,
                });
                first = end;
            }
        }
        let mut nodes = Vec::with_capacity(2 * blocks.len() / LEAF + 2);
        build(&mut blocks, 0, &mut nodes);
        Some(Self {
            polylines,
            max_len,
            blocks,
            nodes,
        })
    }

    /// Number of polylines.
    pub fn len(&self) -> usize {
        self.polylines.len()
    }

    /// Never true (construction needs at least one polyline).
    pub fn is_empty(&self) -> bool {
        self.polylines.is_empty()
    }

    fn flat(&self, polyline: usize, segment: usize) -> usize {
        polyline * (self.max_len - 1) + segment
    }

    fn segment_distance3(&self, q: [f32; 3], polyline: usize, segment: usize) -> f32 {
        let pts = &self.polylines[polyline].points;
        let (s, e) = (pts[segment], pts[segment + 1]);
        let sp = [q[0] - s[0], q[1] - s[1], q[2] - s[2]];
        let se = [e[0] - s[0], e[1] - s[1], e[2] - s[2]];
        let t = divide_no_nan(sp[0] * se[0] + sp[1] * se[1], se[0] * se[0] + se[1] * se[1]);
        let tc = t.clamp(0.0, 1.0);
        let d = [
            sp[0] - se[0] * tc,
            sp[1] - se[1] * tc,
            (sp[2] - se[2] * tc) * Z_STRETCH,
        ];
        (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
    }

    /// Side of segment `segment` the point is on: -1 left (road), +1 right, 0 on it.
    fn side(&self, q: [f32; 3], polyline: usize, segment: usize) -> f32 {
        let pts = &self.polylines[polyline].points;
        let (s, e) = (pts[segment], pts[segment + 1]);
        let sp = [q[0] - s[0], q[1] - s[1]];
        let se = [e[0] - s[0], e[1] - s[1]];
        sign(sp[0] * se[1] - sp[1] * se[0])
    }

    fn direction(&self, polyline: usize, segment: usize) -> [f32; 2] {
        let pts = &self.polylines[polyline].points;
        let (s, e) = (pts[segment], pts[segment + 1]);
        [e[0] - s[0], e[1] - s[1]]
    }

    /// Signed planar distance from `q` (x, y, z) to the road boundary: negative on the
    /// road. `hint` is read as a first guess and updated with the matched segment.
    pub fn signed_distance(&self, q: [f32; 3], hint: &mut SegmentHint) -> f32 {
        let mut best = Best {
            dist3: f32::INFINITY,
            flat: usize::MAX,
            polyline: 0,
            segment: 0,
        };
        let consider = |best: &mut Best, p: usize, s: usize| {
            let d = self.segment_distance3(q, p, s);
            let flat = self.flat(p, s);
            if d < best.dist3 || (d == best.dist3 && flat < best.flat) {
                *best = Best {
                    dist3: d,
                    flat,
                    polyline: p,
                    segment: s,
                };
            }
        };
        if hint.polyline < self.polylines.len()
            && hint.segment + 1 < self.polylines[hint.polyline].points.len()
        {
            consider(&mut best, hint.polyline, hint.segment);
        }
        // Depth-first, nearer child first.
        let mut stack: Vec<(u32, f32)> = Vec::with_capacity(64);
        if let Some(root) = self.nodes.last() {
            stack.push((
                (self.nodes.len() - 1) as u32,
                box_bound(&root.lo, &root.hi, q),
            ));
        }
        while let Some((ni, bound)) = stack.pop() {
            if prunable(bound, best.dist3) {
                continue;
            }
            let node = self.nodes[ni as usize];
            if node.leaf {
                for b in &self.blocks[node.first as usize..node.end as usize] {
                    if prunable(box_bound(&b.lo, &b.hi, q), best.dist3) {
                        continue;
                    }
                    for s in b.first as usize..b.end as usize {
                        consider(&mut best, b.polyline as usize, s);
                    }
                }
            } else {
                let (a, b) = (node.first, node.end);
                let na = &self.nodes[a as usize];
                let nb = &self.nodes[b as usize];
                let ba = box_bound(&na.lo, &na.hi, q);
                let bb = box_bound(&nb.lo, &nb.hi, q);
                if ba <= bb {
                    stack.push((b, bb));
                    stack.push((a, ba));
                } else {
                    stack.push((a, ba));
                    stack.push((b, bb));
                }
            }
        }
        *hint = SegmentHint {
            polyline: best.polyline,
            segment: best.segment,
        };
        self.signed_at(q, best.polyline, best.segment)
    }

    /// The signed planar distance to a given segment, with the official corner rule.
    fn signed_at(&self, q: [f32; 3], p: usize, i: usize) -> f32 {
        let line = &self.polylines[p];
        let len = line.points.len();
        let last = len - 2;
        let longest = len == self.max_len;
        let pts = &line.points;
        let (s, e) = (pts[i], pts[i + 1]);
        let sp = [q[0] - s[0], q[1] - s[1]];
        let se = [e[0] - s[0], e[1] - s[1]];
        let t = divide_no_nan(sp[0] * se[0] + sp[1] * se[1], se[0] * se[0] + se[1] * se[1]);
        let n = sign(sp[0] * se[1] - sp[1] * se[0]);
        let combine = |other: usize, convex: bool| {
            let m = self.side(q, p, other);
            if convex { n.max(m) } else { n.min(m) }
        };
        let cross = |a: [f32; 2], b: [f32; 2]| a[0] * b[1] - a[1] * b[0];
        let sign_v = if t < 0.0 {
            // The previous segment: i-1, or with wrap-around the last one.
            let prior = if i > 0 {
                Some(i - 1)
            } else if line.cyclic && longest {
                Some(last)
            } else if line.cyclic {
                None
            } else {
                // Non-cyclic start: the official prior is the segment itself.
                Some(i)
            };
            match prior {
                Some(j) => {
                    let convex = cross(self.direction(p, j), se) > 0.0;
                    combine(j, convex)
                }
                None => n,
            }
        } else if t > 1.0 {
            let next = if i < last {
                Some(i + 1)
            } else if !longest {
                None
            } else if line.cyclic {
                Some(0)
            } else {
                Some(i)
            };
            match next {
                Some(j) => {
                    let convex = cross(se, self.direction(p, j)) > 0.0;
                    combine(j, convex)
                }
                None => n,
            }
        } else {
            n
        };
        let tc = t.clamp(0.0, 1.0);
        let d = [sp[0] - se[0] * tc, sp[1] - se[1] * tc];
        sign_v * (d[0] * d[0] + d[1] * d[1]).sqrt()
    }

    /// Distance of a box (its four bottom corners, x y z) to the road edge: the most
    /// off-road corner.
    pub fn box_distance(&self, corners: &[[f32; 3]; 4], hint: &mut SegmentHint) -> f32 {
        let mut best = f32::NEG_INFINITY;
        for c in corners {
            let d = self.signed_distance(*c, hint);
            // `reduce_max` (NaN is not expected from finite input).
            if d > best || d.is_nan() {
                best = d;
            }
        }
        best
    }
}

/// `tf.math.divide_no_nan`: 0 where the divisor is 0.
pub fn divide_no_nan(a: f32, b: f32) -> f32 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// `tf.sign`: -1, 0 or 1 (NaN stays NaN).
pub fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        v * 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter-clockwise square road of side 10 m around the origin.
    fn square() -> RoadEdges {
        let pts = vec![
            [-5.0, -5.0, 0.0],
            [5.0, -5.0, 0.0],
            [5.0, 5.0, 0.0],
            [-5.0, 5.0, 0.0],
            [-5.0, -5.0, 0.0],
        ];
        RoadEdges::from_polylines([pts]).unwrap()
    }

    #[test]
    fn inside_is_negative_outside_positive() {
        let r = square();
        let mut h = SegmentHint::default();
        assert!((r.signed_distance([0.0, 0.0, 0.0], &mut h) + 5.0).abs() < 1e-6);
        assert!((r.signed_distance([0.0, -4.0, 0.0], &mut h) + 1.0).abs() < 1e-6);
        assert!((r.signed_distance([0.0, -7.0, 0.0], &mut h) - 2.0).abs() < 1e-6);
        // Outside near a convex corner: positive, corner distance.
        let d = r.signed_distance([7.0, -7.0, 0.0], &mut h);
        assert!((d - 8f32.sqrt()).abs() < 1e-5, "{d}");
        // And near the wrap-around corner of the cyclic polyline.
        let d = r.signed_distance([-7.0, -7.0, 0.0], &mut h);
        assert!((d - 8f32.sqrt()).abs() < 1e-5, "{d}");
        let d = r.signed_distance([-4.0, -4.5, 0.0], &mut h);
        assert!((d + 0.5).abs() < 1e-5, "{d}");
    }

    #[test]
    fn hints_do_not_change_results() {
        let r = square();
        for (x, y) in [(0.3, 0.2), (9.0, 1.0), (-6.0, 6.5), (4.9, -4.9)] {
            let mut cold = SegmentHint::default();
            let mut warm = SegmentHint {
                polyline: 0,
                segment: 2,
            };
            assert_eq!(
                r.signed_distance([x, y, 0.0], &mut cold),
                r.signed_distance([x, y, 0.0], &mut warm)
            );
        }
    }

    #[test]
    fn a_lower_level_edge_does_not_capture_points_above() {
        // Road on the left of +x at z = 0; another edge 1 m away in plan but 10 m below,
        // facing the other way.
        let upper = vec![[-50.0, 0.0, 0.0], [50.0, 0.0, 0.0]];
        let lower = vec![[50.0, 1.5, -10.0], [-50.0, 1.5, -10.0]];
        let r = RoadEdges::from_polylines([upper, lower]).unwrap();
        let mut h = SegmentHint::default();
        let d = r.signed_distance([0.0, 2.0, 0.0], &mut h);
        assert!((d + 2.0).abs() < 1e-6, "{d}");
    }

    /// The official search: every segment in flat order, the first minimum.
    fn brute_force(r: &RoadEdges, q: [f32; 3]) -> f32 {
        let mut best = (f32::INFINITY, 0, 0);
        for (p, line) in r.polylines.iter().enumerate() {
            for s in 0..line.points.len() - 1 {
                let d = r.segment_distance3(q, p, s);
                if d < best.0 {
                    best = (d, p, s);
                }
            }
        }
        r.signed_at(q, best.1, best.2)
    }

    proptest::proptest! {
        #[test]
        fn pruned_search_is_the_official_argmin(
            lines in proptest::collection::vec(
                proptest::collection::vec((-60.0f32..60.0, -60.0f32..60.0, -2.0f32..2.0), 2..40),
                1..8,
            ),
            queries in proptest::collection::vec((-80.0f32..80.0, -80.0f32..80.0, -3.0f32..3.0), 1..20),
        ) {
            let r = RoadEdges::from_polylines(
                lines.into_iter().map(|l| l.into_iter().map(|(x, y, z)| [x, y, z]).collect()),
            ).unwrap();
            let mut hint = SegmentHint::default();
            for (x, y, z) in queries {
                let q = [x, y, z];
                proptest::prop_assert_eq!(r.signed_distance(q, &mut hint), brute_force(&r, q));
            }
        }
    }

    #[test]
    fn degenerate_polylines_are_skipped() {
        assert!(RoadEdges::from_polylines([vec![[0.0, 0.0, 0.0]]]).is_none());
    }
}
