//! Compiles the connector descriptions in `connectors/*.toml` into the library, so every
//! function ships the same ones (`connectors::declared::registry`) and `sam build` needs nothing
//! beside the binaries.

use std::io::Write;

fn main() {
    let dir =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("connectors");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("described.rs");
    let mut f = std::fs::File::create(out).unwrap();
    writeln!(f, "/// The compiled-in descriptions: (file name, text).").unwrap();
    writeln!(f, "pub static FILES: &[(&str, &str)] = &[").unwrap();
    for p in &files {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_string_lossy();
        writeln!(
            f,
            "    ({name:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .unwrap();
    }
    writeln!(f, "];").unwrap();
}
