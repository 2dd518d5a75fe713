//! One Tokio runtime per process, created on first use.
//!
//! A child made by `fork` (Linux `multiprocessing`, PyTorch DataLoader workers) inherits the
//! parent's memory but none of its threads: the parent's runtime is unusable there, and
//! dropping it would wait for threads that do not exist. So the runtime is keyed by PID: a
//! process whose PID differs from the owner's builds its own, and the inherited one is left
//! alone, never touched or dropped (runtimes live as long as the process anyway).

use std::sync::Mutex;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors;

/// The runtime and the process it belongs to. Only locked while holding the GIL, so a fork
/// (which CPython makes with the GIL held) cannot happen while another thread holds it.
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// This process's runtime. The `Python` token says the GIL is held (see [`RUNTIME`]).
pub(crate) fn get(_py: Python<'_>) -> PyResult<&'static Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, runtime)) = *slot {
        if owner == pid {
            return Ok(runtime);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("s3fetch")
        .build()
        .map_err(|e| errors::to_err(_py, &s3fetch::Error::Runtime(e)))?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((pid, runtime));
    Ok(runtime)
}
