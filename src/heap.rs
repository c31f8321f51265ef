//! The process's heap as the kernel sees it. A session process lives as long as its
//! client, often idle for hours; memory malloc keeps for reuse after a burst of work
//! counts against it the whole time.

/// Hands memory the heap has freed back to the kernel (glibc keeps it for reuse
/// otherwise): after the login phase (the user file, the configuration, TLS set-up:
/// some 100 KiB per idle session with a thousand virtual users, BENCHMARKS.md, IDLE
/// at scale) and after a large scan or an index switch, so that an idle session with a
/// large folder selected does not keep what a rescan briefly needed.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap under its lock; it takes no pointer
    // of ours and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
