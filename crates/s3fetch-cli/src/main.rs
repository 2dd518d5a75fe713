//! The `s3fetch` command. Everything but the exit and the allocator setting lives in the
//! library crate's [`run`], which the Python wheel's `s3fetch` command calls too.

fn main() -> std::process::ExitCode {
    trim_freed_memory();
    std::process::ExitCode::from(s3fetch_cli::run(std::env::args_os()))
}

/// Has glibc return freed heap memory to the system once 128 KiB of it is free at the top of
/// a heap (its default threshold grows up to 32 MiB as large blocks come and go).
///
/// A listing of a million keys allocates and frees two small strings per key on whichever
/// thread parsed or consumed it; with the default, the freed memory stays mapped and the peak
/// RSS of `million` grew to 1.5–1.6× `needle`'s (63–77 vs 46–47 MiB; BENCHMARKS.md, Memory).
/// The setting costs nothing measurable here. Not in the library: a process that embeds it
/// (the Python extension) keeps its own allocator policy.
///
/// The one `unsafe` in the command: `mallopt` is called once, before any other thread exists,
/// with a documented parameter and a plain integer.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_freed_memory() {
    // SAFETY: mallopt takes two integers and touches only the allocator's own settings; no
    // other thread can be allocating yet.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_freed_memory() {}
