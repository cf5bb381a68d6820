//! Uniform grids: the spatial indexes that let the simulator find nearby road segments,
//! road edges and objects without scanning every entity.
//!
//! - [`RoadGrid`] (per scene, built once): the observation's road segments. Each cell
//!   lazily gets one contiguous list of the segments whose midpoints lie within
//!   `radius + h` of the cell centre (`h` half the cell diagonal), sorted by that
//!   distance. An agent at distance `δ` from the centre passes a prefix straight to
//!   [`spacer_core::observation::build`]: no copy and no per-agent scan of the map.
//!   The prefix ends at centre distance `min(radius + δ, D + 2δ)`, where `D` is the
//!   centre distance of the list's `slots`-th segment: the agent has `slots` segments
//!   within `D + δ`, so each of its `slots` nearest lies within `D + 2δ` of the
//!   centre. The prefix therefore holds everything the builder can keep, and little
//!   more; lists are stored only that far (`D + 2h`).
//! - [`EdgeGrid`] (per scene, built once): the raw road-edge segments, each filed under
//!   every cell its bounding box overlaps, for the off-road test.
//! - [`ObjectGrid`] (per world, rebuilt every step in place): the objects present at
//!   the step, sorted by cell, for partner candidates and the collision broad phase.
//!
//! Positions outside a grid are clamped to its border cells, so a query never misses
//! an entity; the exact distance tests run afterwards.

use std::sync::OnceLock;

use spacer_core::geometry::{OrientedBox, Segment, Vec2};
use spacer_core::observation::RoadSegment;

/// Upper bound on the cells of one grid: a scene with a stray far-away point gets
/// coarser cells instead of an enormous table.
pub const MAX_CELLS: usize = 1 << 20;

/// The geometry of a uniform grid: origin, cell size and dimensions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridShape {
    origin: Vec2,
    cell: f32,
    inv_cell: f32,
    nx: usize,
    ny: usize,
}

impl GridShape {
    /// The grid of `cell`-sized squares covering the box `[min, max]` (a single cell
    /// when the box is empty or not finite). The cell grows when more than
    /// [`MAX_CELLS`] would be needed.
    pub fn covering(min: Vec2, max: Vec2, cell: f32) -> Self {
        let finite = min.is_finite() && max.is_finite() && max.x >= min.x && max.y >= min.y;
        let (min, max) = if finite {
            (min, max)
        } else {
            (Vec2::ZERO, Vec2::ZERO)
        };
        let mut cell = cell.max(0.5);
        loop {
            let nx = (((max.x - min.x) / cell).floor() as usize).saturating_add(1);
            let ny = (((max.y - min.y) / cell).floor() as usize).saturating_add(1);
            if nx.saturating_mul(ny) <= MAX_CELLS {
                return Self {
                    origin: min,
                    cell,
                    inv_cell: 1.0 / cell,
                    nx,
                    ny,
                };
            }
            cell *= 2.0;
        }
    }

    /// Number of cells.
    #[inline]
    pub fn cells(&self) -> usize {
        self.nx * self.ny
    }

    /// Cell edge length (metres).
    #[inline]
    pub fn cell_size(&self) -> f32 {
        self.cell
    }

    #[inline]
    fn axis(&self, v: f32, origin: f32, n: usize) -> usize {
        // `as` saturates (NaN -> 0), so any input maps into the grid.
        let i = ((v - origin) * self.inv_cell).floor() as isize;
        i.clamp(0, n as isize - 1) as usize
    }

    /// Column and row of the cell holding `p` (clamped to the grid).
    #[inline]
    pub fn cell_of(&self, p: Vec2) -> (usize, usize) {
        (
            self.axis(p.x, self.origin.x, self.nx),
            self.axis(p.y, self.origin.y, self.ny),
        )
    }

    /// Flat index of a cell.
    #[inline]
    pub fn index(&self, ix: usize, iy: usize) -> usize {
        iy * self.nx + ix
    }

    /// Inclusive column and row ranges of the cells overlapping `[min, max]`.
    #[inline]
    pub fn range(&self, min: Vec2, max: Vec2) -> (usize, usize, usize, usize) {
        let (x0, y0) = self.cell_of(min);
        let (x1, y1) = self.cell_of(max);
        (x0, x1, y0, y1)
    }

    /// Centre of a cell.
    #[inline]
    pub fn center(&self, ix: usize, iy: usize) -> Vec2 {
        Vec2::new(
            self.origin.x + (ix as f32 + 0.5) * self.cell,
            self.origin.y + (iy as f32 + 0.5) * self.cell,
        )
    }

    /// True when `p` lies inside the grid (not clamped).
    #[inline]
    pub fn contains(&self, p: Vec2) -> bool {
        let lx = (p.x - self.origin.x) * self.inv_cell;
        let ly = (p.y - self.origin.y) * self.inv_cell;
        lx >= 0.0 && ly >= 0.0 && lx < self.nx as f32 && ly < self.ny as f32
    }
}

/// Entities filed by cell in compressed-row form: the items of cell `c` are
/// `items[starts[c]..starts[c + 1]]`.
#[derive(Clone, Debug, Default)]
struct Buckets {
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl Buckets {
    /// Files `(cell, item)` pairs; `pairs` is called twice (count, then fill) so that
    /// nothing is allocated once the buffers have grown to size.
    fn fill<I: Iterator<Item = (usize, u32)>>(&mut self, cells: usize, pairs: impl Fn() -> I) {
        self.starts.clear();
        self.starts.resize(cells + 1, 0);
        let mut total = 0usize;
        for (c, _) in pairs() {
            self.starts[c + 1] += 1;
            total += 1;
        }
        for c in 0..cells {
            self.starts[c + 1] += self.starts[c];
        }
        self.items.clear();
        self.items.resize(total, 0);
        // `starts[c]` is used as the write cursor of cell c, then restored.
        for (c, item) in pairs() {
            let at = self.starts[c] as usize;
            self.items[at] = item;
            self.starts[c] += 1;
        }
        for c in (1..=cells).rev() {
            self.starts[c] = self.starts[c - 1];
        }
        self.starts[0] = 0;
    }

    #[inline]
    fn cell(&self, c: usize) -> &[u32] {
        let (a, b) = (self.starts[c] as usize, self.starts[c + 1] as usize);
        &self.items[a..b]
    }
}

/// One cell's road candidates, nearest to the cell centre first.
#[derive(Debug)]
struct CellRoads {
    segments: Box<[RoadSegment]>,
    /// Distance of each segment's midpoint to the cell centre (ascending).
    distances: Box<[f32]>,
}

/// The observation's road segments of one scene, indexed for radius queries.
#[derive(Debug)]
pub struct RoadGrid {
    segments: Vec<RoadSegment>,
    shape: GridShape,
    radius: f32,
    slots: usize,
    by_cell: Buckets,
    lists: Vec<OnceLock<CellRoads>>,
}

impl RoadGrid {
    /// Indexes `segments` for observations of `radius` metres that keep the `slots`
    /// nearest segments, with `cell`-sized cells. Non-finite segments are dropped (the
    /// builder would skip them anyway).
    pub fn new(segments: Vec<RoadSegment>, radius: f32, slots: usize, cell: f32) -> Self {
        let segments: Vec<RoadSegment> = segments
            .into_iter()
            .filter(|s| s.center.is_finite() && s.yaw.is_finite())
            .collect();
        let (mut min, mut max) = (
            Vec2::new(f32::INFINITY, f32::INFINITY),
            Vec2::new(f32::NEG_INFINITY, f32::NEG_INFINITY),
        );
        for s in &segments {
            min = Vec2::new(min.x.min(s.center.x), min.y.min(s.center.y));
            max = Vec2::new(max.x.max(s.center.x), max.y.max(s.center.y));
        }
        // Agents farther than `radius` outside the midpoints' box see no segment.
        let pad = Vec2::new(radius, radius);
        let shape = GridShape::covering(min - pad, max + pad, cell);
        let mut by_cell = Buckets::default();
        by_cell.fill(shape.cells(), || {
            segments.iter().enumerate().map(|(i, s)| {
                let (x, y) = shape.cell_of(s.center);
                (shape.index(x, y), i as u32)
            })
        });
        let lists = (0..shape.cells()).map(|_| OnceLock::new()).collect();
        Self {
            segments,
            shape,
            radius,
            slots,
            by_cell,
            lists,
        }
    }

    /// All indexed segments.
    pub fn segments(&self) -> &[RoadSegment] {
        &self.segments
    }

    /// The radius the grid was built for.
    pub fn radius(&self) -> f32 {
        self.radius
    }

    /// The grid's shape.
    pub fn shape(&self) -> &GridShape {
        &self.shape
    }

    /// A superset of the segments whose midpoints lie within [`RoadGrid::radius`] of
    /// `p` (nearest to the cell centre first). Empty when `p` is outside the grid or
    /// not finite: no segment can then be within the radius.
    pub fn candidates(&self, p: Vec2) -> &[RoadSegment] {
        if self.segments.is_empty() || !self.shape.contains(p) {
            return &[];
        }
        let (ix, iy) = self.shape.cell_of(p);
        let c = self.shape.index(ix, iy);
        let Some(slot) = self.lists.get(c) else {
            return &[];
        };
        let list = slot.get_or_init(|| self.cell_list(ix, iy));
        let delta = (p - self.shape.center(ix, iy)).norm();
        let mut limit = self.radius + delta;
        if self.slots > 0
            && let Some(&d) = list.distances.get(self.slots - 1)
        {
            limit = limit.min(d + 2.0 * delta);
        }
        let n = list.distances.partition_point(|&d| d <= limit);
        &list.segments[..n]
    }

    fn cell_list(&self, ix: usize, iy: usize) -> CellRoads {
        let center = self.shape.center(ix, iy);
        let reach = self.radius + self.shape.cell * std::f32::consts::FRAC_1_SQRT_2;
        let r = Vec2::new(reach, reach);
        let (x0, x1, y0, y1) = self.shape.range(center - r, center + r);
        let mut found: Vec<(f32, u32)> = Vec::new();
        for y in y0..=y1 {
            for x in x0..=x1 {
                for &i in self.by_cell.cell(self.shape.index(x, y)) {
                    let d = (self.segments[i as usize].center - center).norm();
                    if d <= reach {
                        found.push((d, i));
                    }
                }
            }
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if self.slots > 0
            && let Some(&(d, _)) = found.get(self.slots - 1)
        {
            let keep = d + self.shape.cell * std::f32::consts::SQRT_2;
            found.truncate(found.partition_point(|&(x, _)| x <= keep));
        }
        CellRoads {
            segments: found
                .iter()
                .map(|&(_, i)| self.segments[i as usize])
                .collect(),
            distances: found.iter().map(|&(d, _)| d).collect(),
        }
    }

    /// Cells whose candidate list has been built so far, and the segments they hold
    /// (memory use of the lazy lists).
    pub fn built_lists(&self) -> (usize, usize) {
        self.lists
            .iter()
            .filter_map(|l| l.get())
            .fold((0, 0), |(c, s), l| (c + 1, s + l.segments.len()))
    }
}

/// The road edges of one scene (the raw polyline segments), for the off-road test.
#[derive(Debug)]
pub struct EdgeGrid {
    segments: Vec<Segment>,
    shape: GridShape,
    by_cell: Buckets,
}

impl EdgeGrid {
    /// Indexes `segments` (non-finite ones dropped) with `cell`-sized cells.
    pub fn new(segments: Vec<Segment>, cell: f32) -> Self {
        let segments: Vec<Segment> = segments
            .into_iter()
            .filter(|s| s.a.is_finite() && s.b.is_finite())
            .collect();
        let (mut min, mut max) = (
            Vec2::new(f32::INFINITY, f32::INFINITY),
            Vec2::new(f32::NEG_INFINITY, f32::NEG_INFINITY),
        );
        for s in &segments {
            for p in [s.a, s.b] {
                min = Vec2::new(min.x.min(p.x), min.y.min(p.y));
                max = Vec2::new(max.x.max(p.x), max.y.max(p.y));
            }
        }
        let shape = GridShape::covering(min, max, cell);
        let mut by_cell = Buckets::default();
        by_cell.fill(shape.cells(), || {
            segments.iter().enumerate().flat_map(move |(i, s)| {
                let lo = Vec2::new(s.a.x.min(s.b.x), s.a.y.min(s.b.y));
                let hi = Vec2::new(s.a.x.max(s.b.x), s.a.y.max(s.b.y));
                let (x0, x1, y0, y1) = shape.range(lo, hi);
                (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| (shape.index(x, y), i as u32)))
            })
        });
        Self {
            segments,
            shape,
            by_cell,
        }
    }

    /// The indexed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True when `b` touches or crosses any road edge.
    pub fn touches(&self, b: &OrientedBox) -> bool {
        if self.segments.is_empty() || !b.center.is_finite() {
            return false;
        }
        let reach = 0.5 * (b.length * b.length + b.width * b.width).sqrt();
        let (lo, hi) = (
            b.center - Vec2::new(reach, reach),
            b.center + Vec2::new(reach, reach),
        );
        let (x0, x1, y0, y1) = self.shape.range(lo, hi);
        let (u, v) = b.axes();
        // A hair of slack keeps the cull conservative under rounding.
        let (hl, hw) = (0.5 * b.length + 1e-4, 0.5 * b.width + 1e-4);
        for y in y0..=y1 {
            for x in x0..=x1 {
                for &i in self.by_cell.cell(self.shape.index(x, y)) {
                    let s = &self.segments[i as usize];
                    // Broad phase: bounding boxes, then the box's own two axes (a
                    // segment wholly beyond one side cannot touch); the exact test
                    // is the core's.
                    if s.a.x.max(s.b.x) < lo.x
                        || s.a.x.min(s.b.x) > hi.x
                        || s.a.y.max(s.b.y) < lo.y
                        || s.a.y.min(s.b.y) > hi.y
                    {
                        continue;
                    }
                    let (da, db) = (s.a - b.center, s.b - b.center);
                    let (ax, bx) = (da.dot(u), db.dot(u));
                    let (ay, by) = (da.dot(v), db.dot(v));
                    if (ax > hl && bx > hl)
                        || (ax < -hl && bx < -hl)
                        || (ay > hw && by > hw)
                        || (ay < -hw && by < -hw)
                    {
                        continue;
                    }
                    if b.distance_to_segment(s) <= 0.0 {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// The objects present at one step, filed by cell; rebuilt in place every step.
///
/// Objects are few (tens to hundreds) and grids large, so instead of a table over all
/// cells the grid keeps the present objects sorted by `(cell, object)`: rebuilding
/// costs a sort of the objects, whatever the grid's size, and a query scans one
/// contiguous run per row of cells it overlaps.
#[derive(Clone, Debug)]
pub struct ObjectGrid {
    shape: GridShape,
    /// `cell << 32 | object`, ascending.
    keys: Vec<u64>,
}

impl ObjectGrid {
    /// An empty grid of `shape`.
    pub fn new(shape: GridShape) -> Self {
        Self {
            shape,
            keys: Vec::new(),
        }
    }

    /// Files object `i` at `positions[i]` for every `i` with `present[i]`.
    pub fn rebuild(&mut self, positions: &[Vec2], present: &[bool]) {
        let shape = self.shape;
        self.keys.clear();
        self.keys.extend(
            positions
                .iter()
                .zip(present)
                .enumerate()
                .filter(|(_, (_, here))| **here)
                .map(|(i, (p, _))| {
                    let (x, y) = shape.cell_of(*p);
                    ((shape.index(x, y) as u64) << 32) | i as u64
                }),
        );
        self.keys.sort_unstable();
    }

    /// Calls `f` with every object filed in a cell overlapping the square of half
    /// side `reach` around `p` (a superset of those within `reach`).
    #[inline]
    pub fn for_each_near(&self, p: Vec2, reach: f32, mut f: impl FnMut(usize)) {
        let r = Vec2::new(reach, reach);
        let (x0, x1, y0, y1) = self.shape.range(p - r, p + r);
        for y in y0..=y1 {
            let first = (self.shape.index(x0, y) as u64) << 32;
            let last = self.shape.index(x1, y) as u64;
            let start = self.keys.partition_point(|&k| k < first);
            for &k in &self.keys[start..] {
                if k >> 32 > last {
                    break;
                }
                f((k & 0xFFFF_FFFF) as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use spacer_core::geometry::Pose;
    use spacer_core::observation::RoadKind;

    fn seg(x: f32, y: f32) -> RoadSegment {
        RoadSegment {
            center: Vec2::new(x, y),
            yaw: 0.0,
            half_length: 1.0,
            half_width: 0.1,
            height: 0.0,
            kind: RoadKind::Lane,
        }
    }

    #[test]
    fn shape_clamps_and_caps() {
        let g = GridShape::covering(Vec2::new(0.0, 0.0), Vec2::new(99.0, 49.0), 10.0);
        assert_eq!((g.nx, g.ny), (10, 5));
        assert_eq!(g.cell_of(Vec2::new(-500.0, 1e9)), (0, 4));
        assert_eq!(g.cell_of(Vec2::new(f32::NAN, 25.0)), (0, 2));
        assert!(g.contains(Vec2::new(5.0, 5.0)) && !g.contains(Vec2::new(-0.1, 5.0)));
        let huge = GridShape::covering(Vec2::new(0.0, 0.0), Vec2::new(1e7, 1e7), 1.0);
        assert!(huge.cells() <= MAX_CELLS);
        let empty = GridShape::covering(
            Vec2::new(f32::INFINITY, 0.0),
            Vec2::new(f32::NEG_INFINITY, 0.0),
            5.0,
        );
        assert_eq!(empty.cells(), 1);
    }

    proptest! {
        #[test]
        fn road_candidates_hold_everything_within_the_radius(
            pts in proptest::collection::vec((-200.0f32..200.0, -200.0f32..200.0), 1..300),
            qx in -300.0f32..300.0, qy in -300.0f32..300.0, cell in 3.0f32..40.0,
        ) {
            let segs: Vec<RoadSegment> = pts.iter().map(|&(x, y)| seg(x, y)).collect();
            let q = Vec2::new(qx, qy);
            let grid = RoadGrid::new(segs.clone(), 50.0, 0, cell);
            let got = grid.candidates(q);
            for s in &segs {
                if (s.center - q).norm() <= 50.0 {
                    prop_assert!(got.contains(s), "missing {:?}", s.center);
                }
            }
            // With a slot count, everything among the `slots` nearest is still there.
            let slots = 20;
            let grid = RoadGrid::new(segs.clone(), 50.0, slots, cell);
            let got = grid.candidates(q);
            let mut by_distance: Vec<&RoadSegment> = segs
                .iter()
                .filter(|s| (s.center - q).norm() <= 50.0)
                .collect();
            by_distance.sort_by(|a, b| (a.center - q).norm().total_cmp(&(b.center - q).norm()));
            for s in by_distance.iter().take(slots) {
                prop_assert!(got.contains(s), "missing near {:?}", s.center);
            }
            // Nothing beyond the radius plus the cell's half diagonal.
            for s in got {
                prop_assert!((s.center - q).norm() <= 50.0 + 2.0 * cell);
            }
        }

        #[test]
        fn object_grid_finds_every_present_object(
            pts in proptest::collection::vec((-100.0f32..100.0, -100.0f32..100.0, any::<bool>()), 0..100),
            qx in -150.0f32..150.0, qy in -150.0f32..150.0,
        ) {
            let shape = GridShape::covering(Vec2::new(-50.0, -50.0), Vec2::new(50.0, 50.0), 12.5);
            let pos: Vec<Vec2> = pts.iter().map(|&(x, y, _)| Vec2::new(x, y)).collect();
            let present: Vec<bool> = pts.iter().map(|p| p.2).collect();
            let mut g = ObjectGrid::new(shape);
            g.rebuild(&pos, &present);
            let q = Vec2::new(qx, qy);
            let mut seen = Vec::new();
            g.for_each_near(q, 30.0, |i| seen.push(i));
            for (i, p) in pos.iter().enumerate() {
                if present[i] && (*p - q).norm() <= 30.0 {
                    prop_assert!(seen.contains(&i));
                }
                if !present[i] {
                    prop_assert!(!seen.contains(&i));
                }
            }
        }
    }

    #[test]
    fn edges_touch_only_when_the_box_reaches_them() {
        let edges = EdgeGrid::new(
            vec![
                Segment::new(Vec2::new(-50.0, 2.0), Vec2::new(50.0, 2.0)),
                Segment::new(Vec2::new(f32::NAN, 0.0), Vec2::new(1.0, 1.0)),
            ],
            10.0,
        );
        assert_eq!(edges.segments().len(), 1);
        let near = OrientedBox::new(Pose::new(0.0, 1.0, 0.0), 4.0, 2.0); // top at y = 2
        let clear = OrientedBox::new(Pose::new(0.0, 0.5, 0.0), 4.0, 2.0);
        let turned = OrientedBox::new(Pose::new(0.0, 0.5, 1.2), 4.0, 2.0);
        let far = OrientedBox::new(Pose::new(500.0, 2.0, 0.0), 4.0, 2.0);
        assert!(edges.touches(&near));
        assert!(!edges.touches(&clear));
        assert!(edges.touches(&turned), "a rotated box reaches the edge");
        assert!(
            !edges.touches(&far),
            "outside the grid, beyond the edge's end"
        );
    }
}
