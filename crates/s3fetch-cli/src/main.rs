//! The `s3fetch` command. Everything but the exit and the allocator setting lives in the
//! library crate's [`run`](s3fetch_cli::run), which the Python wheel's `s3fetch` command
//! calls too.

fn main() -> std::process::ExitCode {
    tune_allocator();
    std::process::ExitCode::from(s3fetch_cli::run(std::env::args_os()))
}

/// Two glibc allocator settings, for a process that lists millions of keys and streams
/// gigabytes through buffers of a few hundred KiB.
///
/// - Freed heap memory goes back to the system once 128 KiB of it is free at the top of a heap
///   (`M_TRIM_THRESHOLD`; the default grows up to 32 MiB as large blocks come and go). A
///   listing of a million keys allocates and frees two small strings per key on whichever
///   thread parsed or consumed it; with the default, the freed memory stays mapped and the
///   peak RSS of `million` grew to 1.5–1.6× `needle`'s (BENCHMARKS.md, Memory).
/// - Blocks up to 1 MiB come from the heap, not from a fresh `mmap` each
///   (`M_MMAP_THRESHOLD`). Setting the trim threshold switches off glibc's dynamic mmap
///   threshold, which left it at 128 KiB: every HTTP read buffer (up to ~400 KiB) was then
///   mapped, faulted in page by page, zeroed and unmapped again — 15 % of the samples of a
///   `large` run, and 1.2–1.7× its wall time. 1 MiB is as fast as 16 MiB there and keeps
///   `million`'s peak lower (58 vs 61 MiB; 41 MiB with 128 KiB; BENCHMARKS.md, Memory).
///
/// Not in the library: a process that embeds it (the Python extension) keeps its own
/// allocator policy, whose dynamic threshold already keeps such buffers on the heap.
///
/// The one `unsafe` in the command: `mallopt` is called before any other thread exists, with
/// documented parameters and plain integers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt takes two integers and touches only the allocator's own settings; no
    // other thread can be allocating yet.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
