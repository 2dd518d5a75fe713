//! Ctrl-C and SIGTERM: the first cancels the run (it stops, removes its temporary files and
//! reports what was done); the second removes the temporary files and exits at once.

use tokio_util::sync::CancellationToken;

use crate::exit;

/// Waits for signals for as long as the run lasts; spawn it beside the run.
pub async fn cancel_on_signal(cancel: CancellationToken) {
    signal().await;
    eprintln!("\ninterrupted: stopping (press Ctrl-C again to quit at once)");
    cancel.cancel();
    signal().await;
    let removed = s3fetch::remove_temporary_files();
    eprintln!("interrupted again: quitting now ({removed} temporary files removed)");
    std::process::exit(exit::INTERRUPTED.into());
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
