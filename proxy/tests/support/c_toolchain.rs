//! Building C plugins the way their authors do: `faultgate plugin new
//! --lang c`, then the scaffold's `build.sh` with Debian's clang and the
//! wasm-tools that scripts/toolchains/c installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::faultgate::run_to_exit;

/// The wasm-tools scripts/toolchains/c installs; panics naming the script
/// when the toolchain is missing.
pub fn wasm_tools() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/toolchains/c/bin/wasm-tools");
    let clang = Command::new("clang").arg("--version").output();
    assert!(
        path.exists() && clang.is_ok_and(|out| out.status.success()),
        "the C plugin toolchain (clang, wasi-libc, wasm-tools) is missing: run scripts/toolchains/c"
    );
    path
}

/// `faultgate plugin new NAME --lang c --dir DIR`; the plugin's directory.
pub fn scaffold(dir: &Path, name: &str) -> PathBuf {
    let (code, output) = run_to_exit(&[
        "plugin",
        "new",
        name,
        "--lang",
        "c",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "plugin new --lang c failed:\n{output}");
    assert!(output.contains("sh build.sh"), "{output}");
    let root = dir.join(name);
    for file in [
        "build.sh",
        "README.md",
        "wit/faultgate.wit",
        "bindings/tcp_plugin.h",
    ] {
        assert!(root.join(file).exists(), "plugin new did not write {file}");
    }
    root
}

/// The scaffold's C source, `NAME.c` (with '-' as '_').
pub fn source(root: &Path) -> PathBuf {
    let name = root
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .replace('-', "_");
    root.join(format!("{name}.c"))
}

/// Runs the scaffold's build (`sh build.sh`); the component it made, or
/// what the build said when it failed.
pub fn try_build(root: &Path) -> Result<PathBuf, String> {
    let output = Command::new("sh")
        .arg("build.sh")
        .current_dir(root)
        .env("WASM_TOOLS", wasm_tools())
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let name = root
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .replace('-', "_");
    Ok(root.join("build").join(format!("{name}.wasm")))
}

/// Like [`try_build`], panicking when the build fails.
pub fn build(root: &Path) -> PathBuf {
    try_build(root).unwrap_or_else(|e| panic!("building the C plugin failed:\n{e}"))
}

/// plugins/c/c_corrupt built as its README says: a C scaffold with its
/// source in place of the template's.
pub fn c_corrupt(dir: &Path) -> PathBuf {
    let root = scaffold(dir, "c_corrupt");
    let source_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/c/c_corrupt/c_corrupt.c");
    std::fs::copy(source_path, source(&root)).unwrap();
    build(&root)
}
