//! Python plugins in tests: built with the real componentize-py that
//! scripts/toolchains/python installs, and loaded into a faultgate whose
//! compile cache is kept between test runs.
//!
//! A Python component carries an interpreter (about 18 MB): building one
//! takes tens of seconds and compiling it (Cranelift) up to a minute on a
//! busy machine. So a build is kept by the hash of its sources, and every
//! faultgate these tests start shares one compile cache: only the first
//! run of the suite pays for either.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::faultgate::{Faultgate, wait_bounded};

/// The componentize-py that scripts/toolchains/python installs.
pub fn componentize_py() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/toolchains/python/bin/componentize-py");
    assert!(
        path.exists(),
        "componentize-py is missing at {}: run scripts/toolchains/python (scripts/test runs it)",
        path.display()
    );
    path
}

/// The Python plugin in `dir` (app.py and its modules), built for `world`
/// against the contract in `wit` (componentize-py's `-d`, relative to
/// `dir` or absolute); returns the component. Kept by the hash of the
/// sources, the contract and the world.
pub fn build(dir: &Path, wit: &Path, world: &str) -> PathBuf {
    let mut sources = world.as_bytes().to_vec();
    let wit = dir.join(wit);
    for source in [dir.to_path_buf(), wit.clone()] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| matches!(path.extension(), Some(e) if e == "py" || e == "wit"))
            .collect();
        files.sort();
        for file in files {
            sources.extend(file.file_name().unwrap().as_encoded_bytes());
            sources.extend(std::fs::read(&file).unwrap());
        }
    }
    let built = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-plugins");
    std::fs::create_dir_all(&built).unwrap();
    let wasm = built.join(format!(
        "{}.wasm",
        faultgate::plugin_host::sha256_hex(&sources)
    ));
    if wasm.exists() {
        return wasm;
    }
    let partial = wasm.with_extension(format!("{}.partial", std::process::id()));
    let child = Command::new(componentize_py())
        .current_dir(dir)
        .arg("-d")
        .arg(&wit)
        .args(["-w", world, "componentize", "app", "-o"])
        .arg(&partial)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting componentize-py");
    let (status, output) = wait_bounded(child, Duration::from_secs(600));
    assert!(
        status.success(),
        "componentize-py failed to build {}:\n{output}",
        dir.display()
    );
    std::fs::rename(&partial, &wasm).unwrap();
    wasm
}

/// The compile cache every faultgate of these tests shares (a directory
/// only this user can write to, as faultgate requires).
pub fn compile_cache() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-plugin-cache");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// `faultgate serve EXTRA...` with the shared compile cache, and a plugin
/// call deadline of a second: on a machine busy with builds, making a
/// Python instance (its interpreter's memory set up, then `create`) can
/// take longer than the default 100 ms, which would refuse the toxic.
pub async fn start_faultgate(extra: &[&str]) -> Faultgate {
    let cache = compile_cache();
    let mut args = vec![
        "--plugin-cache",
        cache.to_str().unwrap(),
        "--plugin-deadline-ms",
        "1000",
    ];
    args.extend(extra);
    Faultgate::start(&args).await
}

/// `POST /plugins` with `wasm`, waiting as long as a first compile takes;
/// returns the status and the answer.
pub async fn upload(fg: &Faultgate, wasm: &Path) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/plugins", fg.api))
        .header("Content-Type", "application/wasm")
        .body(std::fs::read(wasm).unwrap())
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("control API request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `faultgate plugin check WASM`, waited for as long as a compile takes;
/// returns the exit code and what it printed.
pub fn check(wasm: &Path) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_faultgate"))
        .args(["plugin", "check"])
        .arg(wasm)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting faultgate");
    let (status, output) = wait_bounded(child, Duration::from_secs(600));
    (status.code(), output)
}
