//! Cheap checks of the project's own rules: no fix-me markers or debug macros, no locks in shard code, files
//! under the size cap (a ratchet: the allowlist may only shrink), and every file in `tuning/`
//! described in its README.

use std::path::{Path, PathBuf};

/// Non-test lines a source file may have before it is two nouns (STYLE.md §4).
const FILE_LINES_MAX: usize = 600;
/// Files allowed over the cap, with their current size. Shrink, never grow.
const OVERSIZE_ALLOWLIST: &[(&str, usize)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("fuzz") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for dir in ["src", "shards/src", "perf", "bench-harness/src", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

#[test]
fn no_fixme_or_dbg_left_behind() {
    let fixme = ["FIX", "ME"].concat();
    let dbg = ["dbg", "!("].concat();
    for (path, text) in sources() {
        assert!(
            !text.contains(&fixme),
            "{} contains {fixme}",
            path.display()
        );
        assert!(!text.contains(&dbg), "{} contains {dbg}", path.display());
    }
}

#[test]
fn shard_code_takes_no_locks() {
    let banned = [["Mutex", "<"].concat(), ["RwLock", "<"].concat()];
    for (path, text) in sources()
        .into_iter()
        .filter(|(p, _)| p.starts_with(root().join("shards")))
    {
        for word in &banned {
            assert!(
                !text.contains(word.as_str()),
                "{} uses {word}: one owner per core",
                path.display()
            );
        }
    }
}

#[test]
fn source_files_stay_under_the_size_cap() {
    for (path, text) in sources() {
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines = code.lines().count();
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        let allowed = OVERSIZE_ALLOWLIST
            .iter()
            .find(|(p, _)| *p == rel)
            .map_or(FILE_LINES_MAX, |(_, n)| *n);
        assert!(
            lines <= allowed,
            "{rel} has {lines} non-test lines (cap {allowed}): split it"
        );
    }
}

#[test]
fn every_tuning_file_is_described() {
    let readme = std::fs::read_to_string(root().join("tuning/README.md")).unwrap();
    for entry in std::fs::read_dir(root().join("tuning")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "README.md" {
            assert!(
                readme.contains(&format!("`{name}`")),
                "tuning/{name} is not described in tuning/README.md"
            );
        }
    }
}
