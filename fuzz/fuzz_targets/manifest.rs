//! Fuzz target `manifest`: arbitrary text through the manifest loader, then the whole
//! standalone pipeline (store → controllers → service views → zone).
//!
//! `podns_cluster::load` takes paths, not text (there is no public entry point for a string),
//! so each input is written to a file in the temporary directory first; the first octet picks
//! YAML or JSON, the loader's two readers. Errors are fine; panics are not.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use podns_cluster::{ClusterStore, ControllerConfig, ViewConfig};

/// One file per process and format, rewritten for every input.
static FILES: LazyLock<[PathBuf; 2]> = LazyLock::new(|| {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    [
        dir.join(format!("podns-fuzz-manifest-{pid}.yaml")),
        dir.join(format!("podns-fuzz-manifest-{pid}.json")),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&format, text)) = data.split_first() else {
        return;
    };
    let path = &FILES[usize::from(format & 1)];
    std::fs::write(path, text).expect("the temporary directory is writable");
    let Ok(objects) = podns_cluster::load(std::slice::from_ref(path)) else {
        return;
    };
    let store = ClusterStore::from_objects(objects);
    if let Ok(derived) = podns_cluster::derive(&store, &ControllerConfig::default()) {
        let view = podns_cluster::cluster_view(&derived, &ViewConfig::default());
        podns_zone::build(&podns_zone::ZoneConfig::default(), &view);
    }
});
