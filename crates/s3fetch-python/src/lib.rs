//! `s3fetch._s3fetch`: the native half of the `s3fetch` Python package.
//!
//! The pure-Python face (`python/s3fetch/`) checks the Python-side arguments and calls
//! [`run::start`], which builds the library's options, spawns the run on the process's Tokio
//! runtime ([`runtime`]) and returns a [`run::Run`] to wait on with the GIL released
//! ([`run::Run::wait`]). Errors become the classes of `s3fetch.exceptions` in one place
//! ([`errors`]); a boto3 client's credentials are read through [`credentials`]. [`main`] is
//! the `s3fetch` command: the Rust CLI itself.

mod credentials;
mod errors;
mod objects;
mod options;
mod plan;
mod run;
mod runtime;

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the `s3fetch` command line `argv` (program name first) exactly as the `s3fetch`
/// binary does, and returns its exit code.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| s3fetch_cli::run(argv))
}

#[pymodule]
fn _s3fetch(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(main, module)?)?;
    module.add_function(wrap_pyfunction!(run::start, module)?)?;
    module.add_function(wrap_pyfunction!(plan::plan, module)?)?;
    module.add_class::<run::Run>()?;
    module.add_function(wrap_pyfunction!(objects::iter_objects, module)?)?;
    module.add_class::<objects::Objects>()?;
    Ok(())
}
