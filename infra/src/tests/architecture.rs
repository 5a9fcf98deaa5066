//! The module graph stays a graph a newcomer can follow: no import cycle between the top-level
//! modules of any crate, and the library's modules import only from their own layer or below.
//!
//! Read from the source (`crate::x` paths outside comments), at the granularity of top-level
//! modules: a folder (`vendors/`) is one module, however its files refer to each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's layers, lowest first. A module imports from its own layer or a lower one.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core: the event, routing and settings (and what a document is)",
        &[
            "dates",
            "redact",
            "model",
            "documents",
            "event",
            "routing",
            "settings",
            "http",
            "telemetry",
        ],
    ),
    (
        "stores: AWS, records, budgets, secrets",
        &[
            "aws",
            "metrics",
            "calls",
            "batch",
            "idempotency",
            "decisions",
            "lease",
            "secrets",
            "pacing",
            "reconnect",
            "drift",
        ],
    ),
    (
        "vendor plumbing: what every vendor shares, inbound and outbound (and the LLM client)",
        &["connectors", "webhook", "sync", "classifier"],
    ),
    ("vendors: one folder each, and the registry", &["vendors"]),
    (
        "functions: the handlers and the operator checks",
        &["handlers", "doctor"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first path segments after each `crate::` in `line`, groups (`crate::{a, b::c}`) included.
fn crate_paths(line: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        if line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `switchyard_crate::` and the like
        }
        let rest = &line[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        // The group's top-level items: each starts after `{` or a comma at depth 0.
        let (mut depth, mut start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push(ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    out
}

/// Top-level module → the top-level modules it names, for the crate whose sources are `src`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |path: &Path| -> String {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        first.trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        let text = std::fs::read_to_string(file).unwrap();
        let entry = graph.entry(from.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for to in crate_paths(line) {
                if to != from && modules.contains(&to) {
                    entry.insert(to);
                }
            }
        }
    }
    graph
}

/// One cycle of `graph`, as a path that returns to its start, if there is any.
fn a_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let root = crate::repo_root();
    for src in [
        "shared/src",
        "infra/src",
        "infra/sandbox/src",
        "infra/cli/src",
    ] {
        let graph = module_graph(&root.join(src));
        assert!(graph.len() > 3, "{src}: only {} modules read", graph.len());
        if let Some(cycle) = a_cycle(&graph) {
            panic!("{src}: an import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_library_imports_only_from_its_own_layer_or_below() {
    let graph = module_graph(&crate::repo_root().join("shared/src"));
    let layer_of = |m: &str| LAYERS.iter().position(|(_, ms)| ms.contains(&m));
    let mut wrong = Vec::new();
    for (from, tos) in graph.iter().filter(|(m, _)| *m != "lib") {
        let Some(at) = layer_of(from) else {
            wrong.push(format!(
                "`{from}` is in no layer: add it to LAYERS where it belongs"
            ));
            continue;
        };
        for to in tos {
            if layer_of(to).is_some_and(|l| l > at) {
                wrong.push(format!(
                    "`{from}` ({}) imports `{to}` ({})",
                    LAYERS[at].0,
                    LAYERS[layer_of(to).unwrap()].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_reader_sees_grouped_paths_and_finds_cycles() {
    assert_eq!(
        crate_paths(
            "use crate::{event::Event, pacing::{Rate, Limits}, routing}; crate::vendors::x();"
        ),
        ["event", "pacing", "routing", "vendors"]
    );
    assert!(crate_paths("use switchyard_crate::x;").is_empty());
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &[][..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(a_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(a_cycle(&acyclic), None);
}

#[test]
fn unit_tests_are_inline_or_in_a_sibling_tests_module() {
    // `mod tests { … }` in the file, or `mod tests;` beside it (`x/tests.rs`); not a
    // `x_tests.rs` reached by a path attribute, a third layout a reader has to learn.
    let root = crate::repo_root();
    let mut odd = Vec::new();
    for src in [
        "shared/src",
        "infra/src",
        "infra/sandbox/src",
        "infra/cli/src",
    ] {
        let mut files = Vec::new();
        rust_files(&root.join(src), &mut files);
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&file).unwrap();
            // The attribute, spelled so this file does not match itself.
            let path_attribute = concat!("#", "[path");
            if name.ends_with("_tests.rs") || text.contains(path_attribute) {
                odd.push(file.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    assert!(odd.is_empty(), "tests in a third layout: {odd:?}");
}

#[test]
fn every_client_the_library_builds_goes_through_the_one_tls_stack() {
    // The functions are built without aws-lc and without reqwest's own provider: a reqwest client
    // built before ring is installed panics there, and an SDK client without the client of
    // `http::sdk_http_client` cannot send. The test build links both (the sandbox uses aws-lc), so
    // it would not show either; the library builds them in one place each instead.
    let root = crate::repo_root();
    let mut files = Vec::new();
    rust_files(&root.join("shared/src"), &mut files);
    let allowed = [
        ("reqwest::Client::builder(", "shared/src/http.rs"),
        ("aws_config::defaults(", "shared/src/aws.rs"),
    ];
    let banned = [
        "reqwest::Client::new(",
        "reqwest::Client::builder(",
        "reqwest::ClientBuilder",
        "aws_config::defaults(",
        "aws_config::load_defaults(",
        "aws_config::load_from_env(",
    ];
    let mut stray = Vec::new();
    for file in files {
        let at = file.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        for b in banned {
            let count = text.matches(b).count();
            let expected = usize::from(allowed.contains(&(b, at.as_str())));
            if count != expected {
                stray.push(format!("{at}: `{b}` {count} time(s), expected {expected}"));
            }
        }
    }
    assert!(stray.is_empty(), "{}", stray.join("\n"));
}

#[test]
fn the_deployed_functions_link_one_crypto_library() {
    // What `cargo lambda build` resolves for the six function crates alone (no test crate's
    // features): ring, not aws-lc (1.3 MB of code each).
    let functions = ["intake", "classify", "act", "canary", "rotate", "sync"];
    let tree = |crate_name: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.current_dir(crate::repo_root())
            .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
            .args([
                "--target",
                "aarch64-unknown-linux-gnu",
                "--invert",
                crate_name,
            ]);
        for f in functions {
            cmd.args(["-p", f]);
        }
        let out = cmd.output().expect("cargo runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (found, ring) = tree("ring");
    assert!(
        found && functions.iter().all(|f| ring.contains(&format!("{f} v"))),
        "{ring}"
    );
    // cargo refuses to invert on a package the graph does not hold.
    let (found, lc) = tree("aws-lc-sys");
    assert!(!found, "aws-lc is linked again:\n{lc}");
}
