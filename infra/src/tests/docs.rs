//! The README and `docs/` point at what exists: every relative link names a file of the
//! repository, every `#anchor` a heading of its target (as GitHub spells anchors), and every
//! repository path written as code (`shared/src/…`) is still there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The Markdown files a reader is sent through: the README and everything under `docs/`.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Lines outside fenced code blocks, with their 1-based numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (letters, digits, `_`, `-` and
/// spaces stay), spaces become `-`; a repeated heading gets `-1`, `-2`, ….
fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')) else {
            continue;
        };
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.push(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// `[text](target)` and `![alt](target)` outside code blocks and inline code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        // Inline code can hold `](`: drop the spans between backticks first.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((n, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// Repository paths written as inline code: `shared/src/dates.rs`, `infra/test.sh`.
fn code_paths(text: &str) -> Vec<(usize, String)> {
    const ROOTS: [&str; 6] = ["shared/", "infra/", "tests/", "functions/", "docs/", ".ci/"];
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        for span in line.split('`').skip(1).step_by(2) {
            let path = span
                .split("::")
                .next()
                .unwrap_or(span)
                .trim_end_matches('/');
            let placeholder = path.contains(['<', '{', '*', '…', ' ']) || path.contains("NAME");
            if ROOTS.iter().any(|r| path.starts_with(r)) && !placeholder {
                out.push((n, path.to_string()));
            }
        }
    }
    out
}

/// Runs `check` on every doc (its path, its name relative to the root, its text), which pushes
/// what it finds wrong and returns how many things it checked; fails listing the wrongs, or
/// when fewer than `at_least` were checked (the scan missed the docs).
fn check_docs(
    what: &str,
    at_least: usize,
    mut check: impl FnMut(&Path, &str, &str, &mut Vec<String>) -> usize,
) {
    let root = crate::repo_root();
    let (mut wrong, mut checked) = (Vec::new(), 0);
    for doc in documents(&root) {
        let text = std::fs::read_to_string(&doc).expect("readable doc");
        let name = doc.strip_prefix(&root).unwrap().display().to_string();
        checked += check(&doc, &name, &text, &mut wrong);
    }
    assert!(
        checked >= at_least,
        "only {checked} {what} found: is the scan reading the docs?"
    );
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    check_docs("relative links", 40, |doc, name, text, broken| {
        let mut checked = 0;
        for (line, target) in links(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let file = if file.is_empty() {
                doc.to_path_buf()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !file.exists() {
                broken.push(format!("{name}:{line}: {target}: no such file"));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    broken.push(format!(
                        "{name}:{line}: {target}: no heading has that anchor"
                    ));
                }
            }
        }
        checked
    });
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let root = crate::repo_root();
    check_docs("repository paths", 40, |_, name, text, missing| {
        let paths = code_paths(text);
        for (line, path) in &paths {
            if !root.join(path).exists() {
                missing.push(format!("{name}:{line}: `{path}`"));
            }
        }
        paths.len()
    });
}

#[test]
fn the_readme_fits_its_job() {
    let text = std::fs::read_to_string(crate::repo_root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= 400,
        "README.md has {lines} lines; deep sections belong in docs/"
    );
    // The Quick start keeps exactly two commands: the demo and the test suite.
    let quick = text
        .split("## Quick start")
        .nth(1)
        .expect("a Quick start section");
    let block = quick
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let commands: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        commands.len(),
        2,
        "the Quick start's commands: {commands:?}"
    );
    assert!(
        commands[0].starts_with("bash infra/demo.sh")
            && commands[1].starts_with("bash infra/test.sh")
    );
}

#[test]
fn anchors_are_spelled_as_github_spells_them() {
    let text = "# A title\n## Pacing: one budget, shared\n```\n# not a heading\n```\n### `switchyard doctor`\n## A title\n";
    assert_eq!(
        anchors(text),
        [
            "a-title",
            "pacing-one-budget-shared",
            "switchyard-doctor",
            "a-title-1"
        ]
    );
    assert_eq!(
        links("see [x](a.md#b) and `[y](not/a/link)`"),
        [(1, "a.md#b".to_string())]
    );
}

/// Every `fn` name in the repository's Rust sources.
fn function_names(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() && !name.starts_with('.') && name != "target" {
            function_names(&path, out);
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("fn ") {
                let rest = &text[at + 3..];
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'));
                out.insert(rest[..end.unwrap_or(rest.len())].to_owned());
            }
        }
    }
}

#[test]
fn every_test_the_docs_name_exists() {
    let mut functions = std::collections::BTreeSet::new();
    function_names(&crate::repo_root(), &mut functions);
    check_docs("test names", 30, |_, name, text, missing| {
        let mut checked = 0;
        for (line, l) in prose(text) {
            for span in l.split('`').skip(1).step_by(2) {
                for item in span.split(", ") {
                    // `tests/x.rs::name`, `module::tests::name`, `infra/src/tests/deploy.rs::name`
                    let Some((path, test)) = item.rsplit_once("::") else {
                        continue;
                    };
                    let is_test = path.ends_with(".rs")
                        || path
                            .split("::")
                            .any(|s| s == "tests" || s.ends_with("_tests"));
                    if !is_test || test.is_empty() || !test.contains('_') {
                        continue;
                    }
                    checked += 1;
                    if !functions.contains(test) {
                        missing.push(format!("{name}:{line}: `{item}`"));
                    }
                }
            }
        }
        checked
    });
}
