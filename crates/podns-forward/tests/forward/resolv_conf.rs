//! resolv.conf parsing.

use std::net::SocketAddr;
use std::path::PathBuf;

use podns_forward::{ForwardError, resolv_conf_upstreams};

/// Writes `text` to a file of its own under the temp dir.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podns-forward-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn nameservers_v4_v6_zones_comments_options() {
    let path = file(
        "full.conf",
        "# generated\n\
         search default.svc.cluster.local svc.cluster.local\n\
         nameserver 10.96.0.10\n\
         ; nameserver 10.0.0.99\n\
         nameserver 2001:db8::53   # inline comment\n\
         nameserver fe80::1%2\n\
         nameserver not-an-address\n\
         nameserver\n\
         options ndots:5 timeout:2\n\
         \tnameserver   192.0.2.53\n",
    );
    let got = resolv_conf_upstreams(&path).unwrap();
    let want: Vec<SocketAddr> = [
        "10.96.0.10:53",
        "[2001:db8::53]:53",
        "[fe80::1%2]:53",
        "192.0.2.53:53",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert_eq!(got, want);
}

#[test]
fn zone_by_interface_name() {
    if !std::path::Path::new("/sys/class/net/lo/ifindex").exists() {
        return; // not Linux sysfs
    }
    let path = file("zone.conf", "nameserver fe80::1%lo\n");
    let got = resolv_conf_upstreams(&path).unwrap();
    let SocketAddr::V6(v6) = got[0] else {
        panic!("v6")
    };
    assert_ne!(v6.scope_id(), 0);
}

#[test]
fn no_nameserver_is_an_error_naming_the_file() {
    let path = file(
        "empty.conf",
        "search example\noptions ndots:1\n# nameserver 1.1.1.1\n",
    );
    let err = resolv_conf_upstreams(&path).unwrap_err();
    assert!(matches!(err, ForwardError::NoNameservers { .. }));
    assert!(err.to_string().contains("empty.conf"), "{err}");
    let missing = path.with_file_name("missing.conf");
    let err = resolv_conf_upstreams(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.conf"), "{err}");
}
