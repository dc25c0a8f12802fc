//! Compiles every analytics SQL file (`sql/<dialect>/<name>.sql`) into the binary, so that
//! a new final table or dialect is a new file and nothing else: `src/warehouse/sql.rs`
//! looks the files up by dialect and name. The binary then runs anywhere (a container has
//! no `sql/` folder), and a changed file rebuilds it.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not baked in when it is compiled: clones sharing one
    // target directory share this script's binary, and each must read its own `sql/`.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("sql");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for dialect in std::fs::read_dir(&root).expect("sql/ is readable") {
        let dialect = dialect.expect("sql/ is readable").path();
        if !dialect.is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", dialect.display());
        for file in std::fs::read_dir(&dialect).expect("sql/<dialect>/ is readable") {
            let file = file.expect("sql/<dialect>/ is readable").path();
            if file.extension().is_some_and(|e| e == "sql") {
                files.push(file);
            }
        }
    }
    files.sort();
    let mut out =
        String::from("/// Every SQL file under `sql/`: (dialect, name without `.sql`, text).\n");
    out.push_str("pub(super) static FILES: &[(&str, &str, &str)] = &[\n");
    for file in &files {
        let name = |p: &Path| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
        let (Some(dialect), Some(stem)) = (file.parent().and_then(name), name(file)) else {
            continue;
        };
        let _ = writeln!(
            out,
            "    ({dialect:?}, {stem:?}, include_str!({:?})),",
            file.display().to_string()
        );
    }
    out.push_str("];\n");
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("sql_files.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
