//! host-sim: see README.
