//! The process's allocator settings, chosen once before any thread starts.
//!
//! glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and
//! memory freed into one arena is not reused by the others. podns allocates in bursts on
//! whichever runtime thread handles the event (a relist, a zone build) and not at all on the
//! query path (`crates/podns-server/tests/no_alloc.rs`), so extra arenas buy no throughput and
//! keep each burst's high-water mark resident. Measured at 10k Services / 100k endpoints in
//! cluster mode (`cargo bench -p podns --bench programming -- 10000x10:3`, peak RSS):
//! default arenas 104 MiB, `M_ARENA_MAX` 2 → 96 MiB, 1 → 87 MiB; jemalloc 105 MiB and
//! mimalloc 97 MiB (both preloaded) did no better. An operator's `MALLOC_ARENA_MAX` (or
//! `GLIBC_TUNABLES`) is left to win.

/// Limits glibc to one malloc arena unless the environment already chose.
pub(crate) fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !chosen {
            // SAFETY: mallopt only changes malloc's parameters; it is called before any other
            // thread exists (the first thing `main` does), and M_ARENA_MAX takes any positive
            // value.
            #[allow(unsafe_code)]
            let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        }
    }
}
