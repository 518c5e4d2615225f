//! petrel-perf: criterion benches of Petrel's pure hot paths; see `benches/`.
