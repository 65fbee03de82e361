//! The bodies of the fuzz targets (`fuzz/`), here so that a refactor that breaks them fails to
//! compile, and so that `cargo test` runs them on random input.
