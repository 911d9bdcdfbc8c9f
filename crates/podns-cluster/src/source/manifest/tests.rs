use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn refs(objects: &[Object]) -> Vec<String> {
    objects.iter().map(|o| o.object_ref().to_string()).collect()
}

fn store_refs(store: &ClusterStore) -> Vec<String> {
    store.iter().map(|o| o.object_ref().to_string()).collect()
}

fn messages(errors: &ManifestErrors) -> Vec<String> {
    errors.errors().iter().map(ToString::to_string).collect()
}

/// A fresh, empty folder for one test (removed first if left over).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podns-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_str(name: &str, file: &str, text: &str) -> Result<Vec<Object>, ManifestErrors> {
    let dir = temp_dir(name);
    std::fs::write(dir.join(file), text).unwrap();
    let result = load(std::slice::from_ref(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
    result
}

#[test]
fn seed_000_loads_the_indented_form_and_skips_other_kinds() {
    let objects = load(&[fixture("seed-000-headless-basics")]).unwrap();
    assert_eq!(
        refs(&objects),
        [
            "Service default/headless-service",
            "StatefulSet default/web",
            "Service default/cassandra",
            "Service default/external-db",
            "Service default/manual-endpoints",
            "Endpoints default/manual-endpoints",
            // The Istio DestinationRule is skipped.
            "Pod default/custom-dns-pod",
        ]
    );
    let Object::Service(svc) = &objects[0] else {
        panic!("a Service")
    };
    assert_eq!(svc.metadata.namespace.as_deref(), Some("default"));
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.ports.as_ref().unwrap()[0].port, 80);
}

#[test]
fn seed_000_as_copied_without_indentation_is_rejected_by_name() {
    let errors = load(&[fixture("broken/unindented.yaml")]).unwrap_err();
    let m = messages(&errors);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].ends_with("unindented.yaml doc 1 Service in default: metadata.name: missing field"),
        "{}",
        m[0]
    );
}

#[test]
fn seeds_001_to_004_load() {
    let consul = load(&[fixture("seed-001-consul")]).unwrap();
    assert_eq!(
        refs(&consul),
        [
            "Service default/consul-server",
            "StatefulSet default/consul-server"
        ]
    );
    let lab = load(&[fixture("seed-002-redis-nginx")]).unwrap();
    assert_eq!(
        refs(&lab),
        [
            "Service default/redis-headless",
            "StatefulSet default/redis",
            "Deployment default/nginx-deployment",
            "Service default/nginx-clusterip",
            "Service default/nginx-headless",
            "DaemonSet default/multitool",
        ]
    );
    let mysql = load(&[fixture("seed-003-mysql")]).unwrap();
    assert_eq!(
        refs(&mysql),
        ["Service default/mysql", "StatefulSet default/mysql"]
    );
    let nginx = load(&[fixture("seed-004-nginx-deployment")]).unwrap();
    assert_eq!(
        refs(&nginx),
        [
            "Deployment default/nginx-deployment",
            "Service default/nginx-headless-service"
        ]
    );
}

#[test]
fn folders_are_read_recursively_in_sorted_order() {
    let all = load(&[fixture("seed-003-mysql"), fixture("seed-001-consul")]).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].object_ref().to_string(), "Service default/mysql");
    let dir = temp_dir("recursive");
    std::fs::create_dir_all(dir.join("b/nested")).unwrap();
    let svc = |n: &str| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {n}}}\n");
    std::fs::write(dir.join("b/nested/z.yml"), svc("z")).unwrap();
    std::fs::write(dir.join("a.yaml"), svc("a")).unwrap();
    std::fs::write(dir.join("c.txt"), svc("ignored")).unwrap();
    std::fs::write(dir.join(".hidden.yaml"), svc("hidden")).unwrap();
    let objects = load(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(refs(&objects), ["Service default/a", "Service default/z"]);
    // The same file twice (folder and file) is read once, not reported as duplicates.
    let objects = load(&[dir.clone(), dir.join("a.yaml")]).unwrap();
    assert_eq!(objects.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_error_of_the_set_names_file_doc_object_and_field() {
    let errors = load(&[fixture("broken")]).unwrap_err();
    let m = messages(&errors);
    let tail = |s: &str| s.rsplit("fixtures/").next().unwrap().to_owned();
    let m: Vec<String> = m.iter().map(|s| tail(s)).collect();
    assert_eq!(
        m[..5],
        [
            "broken/syntax.yaml doc 1: invalid YAML: line 5 column 15: unclosed bracket '['",
            "broken/unindented.yaml doc 1 Service in default: metadata.name: missing field",
            "broken/web.yaml doc 2 StatefulSet default/web: spec.replicas: invalid type: string \"three\", expected i32",
            "broken/web.yaml doc 3 Service default/no-version: apiVersion: missing field",
            "broken/web.yaml doc 4: document is not a mapping (found a sequence)",
        ]
    );
    let dup = &errors.errors()[5];
    assert_eq!(dup.location.document, Some(5));
    assert!(
        dup.to_string()
            .contains("doc 5 Service default/web: defined twice; first defined at ")
    );
    assert!(dup.to_string().ends_with("broken/web.yaml doc 1"));
    assert_eq!(errors.errors()[2].field.as_deref(), Some("spec.replicas"));
    assert!(errors.to_string().starts_with("6 manifest errors\n  "));
}

#[test]
fn unreadable_paths_are_errors() {
    let errors = load(&[fixture("does-not-exist")]).unwrap_err();
    let m = messages(&errors);
    assert!(m[0].contains("does-not-exist: cannot read: "), "{}", m[0]);
}

#[test]
fn lists_are_flattened_and_their_items_named() {
    let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a, namespace: prod}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: skipped}
---
apiVersion: v1
kind: ServiceList
items:
- apiVersion: v1
  kind: Service
  metadata: {name: b}
- apiVersion: v1
  kind: Service
  metadata: {name: c}
  spec: {ports: [{port: http}]}
"#;
    let errors = load_str("lists", "list.yaml", text).unwrap_err();
    let m = messages(&errors);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].ends_with("list.yaml doc 2 item 2 Service default/c: spec.ports[0].port: invalid type: string \"http\", expected i32"),
        "{}",
        m[0]
    );
    let ok = text.replace("port: http", "port: 80");
    let objects = load_str("lists-ok", "list.yaml", &ok).unwrap();
    assert_eq!(
        refs(&objects),
        ["Service prod/a", "Service default/b", "Service default/c"]
    );
}

#[test]
fn json_files_hold_one_or_more_values() {
    let text = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod"}}
{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}"#;
    let objects = load_str("json", "set.json", text).unwrap();
    assert_eq!(refs(&objects), ["Namespace prod", "Pod default/p"]);
    assert_eq!(objects[0].namespace(), "");
    let errors = load_str("json-bad", "bad.json", "{\"kind\": ").unwrap_err();
    assert!(messages(&errors)[0].contains("bad.json doc 1: invalid JSON: "));
}

#[test]
fn api_versions_are_checked_per_group() {
    let text = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: knative}\n---\n\
                apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\n---\n\
                apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: old-slice}\n";
    let errors = load_str("versions", "v.yaml", text).unwrap_err();
    let m = messages(&errors);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m[0].ends_with("v.yaml doc 2 Deployment default/old: apiVersion: apiVersion extensions/v1beta1 is not supported for Deployment (podns reads apps/v1)"), "{}", m[0]);
    assert!(m[1].contains("doc 3 EndpointSlice default/old-slice: apiVersion: "));
}

#[test]
fn documents_are_split_and_counted_like_kubectl() {
    let text = "# leading comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n# only a comment\n---\n--- {apiVersion: v1, kind: Service, metadata: {name: b}}\n...\n---\napiVersion: v1\nkind: Service\nmetadata: {name: c, labels: [x}\n";
    let errors = load_str("split", "s.yaml", text).unwrap_err();
    let m = messages(&errors);
    assert_eq!(m.len(), 1);
    // The third non-empty document, with the file's own line number.
    assert!(
        m[0].contains("s.yaml doc 3: invalid YAML: line 14"),
        "{}",
        m[0]
    );
    let docs = split_yaml_documents(text);
    assert_eq!(docs.len(), 3);
}

#[test]
fn yaml_errors_name_the_file_line_and_column_in_any_document() {
    // A document on its `---` line, and one far into the file: both errors carry the file's
    // own coordinates, not the document's.
    let mut text = String::from("--- {apiVersion: v1, kind: Service, metadata: [x}\n");
    for i in 0..200 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n"
        ));
    }
    // Lines so far: 1 + 200 * 5; the broken `metadata:` is the file's line 1006.
    text.push_str("---\n# a comment first\napiVersion: v1\nkind: Service\nmetadata: {name: [y}\n");
    let errors = load_str("coordinates", "c.yaml", &text).unwrap_err();
    let m = messages(&errors);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[0].contains("c.yaml doc 1: invalid YAML: line 1 column 47"),
        "{}",
        m[0]
    );
    assert!(
        m[1].contains("c.yaml doc 202: invalid YAML: line 1006 column 18"),
        "{}",
        m[1]
    );
    // Only the document that starts on its marker line is copied; the rest borrow the file.
    let docs = split_yaml_documents(&text);
    assert_eq!(docs.len(), 202);
    assert!(matches!(docs[0].text, std::borrow::Cow::Owned(_)));
    assert!(
        docs[1..]
            .iter()
            .all(|d| matches!(d.text, std::borrow::Cow::Borrowed(_)))
    );
    // It starts at its first line of content: 1,003 lines come before it.
    assert_eq!(docs[201].line_offset, 1003);
}

#[test]
fn missing_kind_and_empty_documents() {
    let errors = load_str(
        "kind",
        "k.yaml",
        "apiVersion: v1\nmetadata: {name: x}\n---\n~\n",
    )
    .unwrap_err();
    let m = messages(&errors);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].ends_with("k.yaml doc 1: kind: missing field"),
        "{}",
        m[0]
    );
}

#[test]
fn reload_state_reports_changes_rejections_and_recovery() {
    let obj = |n: &str| {
        let mut svc = k8s_openapi::api::core::v1::Service::default();
        svc.metadata.name = Some(n.to_owned());
        Object::from(svc)
    };
    let set = |n: &str| ClusterStore::from_objects([obj(n)]);
    let mut state = ReloadState::new(&Ok(set("a")));
    assert_eq!(
        state.step(Ok(set("a"))),
        None,
        "unchanged: nothing to report"
    );
    assert_eq!(
        state.step(Ok(set("b"))),
        Some(ManifestEvent::Loaded(set("b")))
    );
    let errors = ManifestErrors(Vec::new());
    assert_eq!(
        state.step(Err(errors.clone())),
        Some(ManifestEvent::Rejected(errors))
    );
    assert_eq!(
        state.step(Ok(set("b"))),
        Some(ManifestEvent::Loaded(set("b"))),
        "good again after a rejection: reported even though it equals the last good set"
    );
}

/// Write, change, break, fix, replace by rename: each step is reported within a bounded wait.
#[test]
fn watch_follows_changes_and_recovers_from_broken_files() {
    let dir = temp_dir("watch");
    let file = dir.join("svc.yaml");
    let svc = |n: &str| format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {n}\n");
    std::fs::write(&file, svc("one")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let debounce = Duration::from_millis(50);

    // A folder, watched recursively.
    let (initial, mut watch) = watch(vec![dir.clone()], debounce).unwrap();
    assert_eq!(store_refs(&initial.unwrap()), ["Service default/one"]);
    let next = |watch: &mut ManifestWatch| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), watch.recv())
                .await
                .expect("a reload within 10 s")
                .expect("the watch is running")
        })
    };
    std::fs::write(&file, svc("two")).unwrap();
    let ManifestEvent::Loaded(objects) = next(&mut watch) else {
        panic!("loaded")
    };
    assert_eq!(store_refs(&objects), ["Service default/two"]);

    std::fs::write(&file, "apiVersion: v1\nkind: Service\nmetadata: {name: [\n").unwrap();
    let ManifestEvent::Rejected(errors) = next(&mut watch) else {
        panic!("rejected")
    };
    assert!(messages(&errors)[0].contains("svc.yaml doc 1: invalid YAML"));

    std::fs::write(&file, svc("two")).unwrap();
    let ManifestEvent::Loaded(objects) = next(&mut watch) else {
        panic!("loaded again")
    };
    assert_eq!(store_refs(&objects), ["Service default/two"]);

    // A new file in a new sub-folder.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/more.yaml"), svc("three")).unwrap();
    let ManifestEvent::Loaded(objects) = next(&mut watch) else {
        panic!("loaded with the new file")
    };
    // In the store's order (kind, namespace, name).
    assert_eq!(
        store_refs(&objects),
        ["Service default/three", "Service default/two"]
    );
    drop(watch);

    // A single file, replaced by rename as editors save.
    let (initial, mut watch) = super::watch(vec![file.clone()], debounce).unwrap();
    assert_eq!(store_refs(&initial.unwrap()), ["Service default/two"]);
    let tmp = dir.join(".svc.yaml.tmp");
    std::fs::write(&tmp, svc("four")).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let ManifestEvent::Loaded(objects) = next(&mut watch) else {
        panic!("loaded after rename")
    };
    assert_eq!(store_refs(&objects), ["Service default/four"]);
    drop(watch);
    std::fs::remove_dir_all(&dir).unwrap();
}
