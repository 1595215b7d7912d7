//! Building JavaScript plugins with the real toolchain: `jco componentize`
//! from npm, installed in plugins/js/toolchain/ by scripts/toolchains/js.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The toolchain's node_modules; panics, naming the script that installs
/// it, when it is not there.
pub fn node_modules() -> PathBuf {
    let modules = repo_root().join("plugins/js/toolchain/node_modules");
    assert!(
        modules.join(".bin/jco").exists(),
        "the JavaScript plugin toolchain is not installed: run scripts/toolchains/js \
         (scripts/test runs it)"
    );
    modules
}

/// `jco componentize SOURCE --wit WIT --world-name WORLD --disable all -o OUT`.
pub fn componentize(source: &Path, wit: &Path, world: &str, out: &Path) {
    let jco = node_modules().join(".bin/jco");
    let output = Command::new(jco)
        .arg("componentize")
        .arg(source)
        .arg("--wit")
        .arg(wit)
        .args(["--world-name", world, "--disable", "all", "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success() && out.exists(),
        "jco componentize {} failed:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the JavaScript plugin `plugins/js/NAME/app.js` for WORLD into
/// DIR; returns the component's path.
pub fn build_repo_plugin(name: &str, world: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}.wasm"));
    let root = repo_root();
    componentize(
        &root.join("plugins/js").join(name).join("app.js"),
        &root.join("wit"),
        world,
        &out,
    );
    out
}

/// Runs a scaffolded plugin's own build (`npm run build`) with the
/// toolchain's node_modules in place of `npm install`'s, which would fetch
/// the same packages again.
pub fn build_scaffold(root: &Path) {
    std::os::unix::fs::symlink(node_modules(), root.join("node_modules")).unwrap();
    let output = Command::new("npm")
        .current_dir(root)
        .args(["run", "--silent", "build"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "npm run build of the scaffolded plugin failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
