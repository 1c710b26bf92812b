//! svg (in progress).
