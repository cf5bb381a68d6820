//! The batch layout: which row belongs to which world and agent, and the contiguous
//! observation buffer.

use std::ops::Range;

use spacer_core::observation::ObservationConfig;

/// Rows are the controlled agents of all worlds, world after world, each world's
/// agents in slot order. Actions and observations use the same rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowIndex {
    /// `offsets[w]..offsets[w + 1]` are world `w`'s rows.
    offsets: Vec<usize>,
    world: Vec<u32>,
    slot: Vec<u32>,
}

impl RowIndex {
    /// The rows of worlds with `agents[w]` controlled agents each.
    pub fn new(agents: impl IntoIterator<Item = usize>) -> Self {
        let mut r = Self {
            offsets: vec![0],
            ..Self::default()
        };
        for (w, n) in agents.into_iter().enumerate() {
            for s in 0..n {
                r.world.push(w as u32);
                r.slot.push(s as u32);
            }
            r.offsets.push(r.world.len());
        }
        r
    }

    /// Rows in all.
    pub fn len(&self) -> usize {
        self.world.len()
    }

    /// True when no world has a controlled agent.
    pub fn is_empty(&self) -> bool {
        self.world.is_empty()
    }

    /// Number of worlds.
    pub fn num_worlds(&self) -> usize {
        self.offsets.len() - 1
    }

    /// World `w`'s rows.
    ///
    /// # Panics
    /// When `w` is not a world of this index.
    pub fn world_rows(&self, w: usize) -> Range<usize> {
        self.offsets[w]..self.offsets[w + 1]
    }

    /// The world and agent slot of `row`.
    ///
    /// # Panics
    /// When `row` is out of range.
    #[inline]
    pub fn locate(&self, row: usize) -> (usize, usize) {
        (self.world[row] as usize, self.slot[row] as usize)
    }

    /// The row of agent `slot` of world `w`.
    ///
    /// # Panics
    /// When `w` is not a world of this index.
    pub fn row(&self, w: usize, slot: usize) -> usize {
        self.offsets[w] + slot
    }
}

/// Every controlled agent's observation at one decision step, in one buffer.
///
/// # Shapes
/// [`ObservationBatch::as_slice`] is `[rows][config.len()]`, row-major, rows as in
/// [`RowIndex`]. Agents that have left the scene (removed) have zero rows.
#[derive(Clone, Debug)]
pub struct ObservationBatch {
    config: ObservationConfig,
    data: Vec<f32>,
}

impl ObservationBatch {
    /// A zeroed batch of `rows` observations of `config`'s layout.
    pub fn new(config: ObservationConfig, rows: usize) -> Self {
        Self {
            config,
            data: vec![0.0; rows * config.len()],
        }
    }

    /// The layout.
    pub fn config(&self) -> &ObservationConfig {
        &self.config
    }

    /// Floats per row.
    pub fn row_len(&self) -> usize {
        self.config.len()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.config.len()
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The whole buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Row `r`.
    ///
    /// # Panics
    /// When `r` is out of range.
    pub fn row(&self, r: usize) -> &[f32] {
        let d = self.config.len();
        &self.data[r * d..(r + 1) * d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_map_to_worlds_and_slots() {
        let r = RowIndex::new([2, 0, 3]);
        assert_eq!(r.len(), 5);
        assert_eq!(r.num_worlds(), 3);
        assert_eq!(r.world_rows(1), 2..2);
        assert_eq!(r.world_rows(2), 2..5);
        assert_eq!(r.locate(3), (2, 1));
        assert_eq!(r.row(2, 1), 3);
        let b = ObservationBatch::new(ObservationConfig::default(), 5);
        assert_eq!(b.rows(), 5);
        assert_eq!(b.row(4).len(), 2984);
    }
}
