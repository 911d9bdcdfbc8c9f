//! Dev-only test kit: a fake Kubernetes API server that speaks the real list/watch protocol.
