//! Integration tests of `podns-forward` against fake upstreams on 127.0.0.1 (one test binary).

mod cache;
mod forwarding;
mod resolv_conf;
mod support;
