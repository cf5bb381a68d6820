//! Bar charts comparing sim agents per metric.
