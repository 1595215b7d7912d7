//! The compile cache (`--plugin-cache DIR`): loading an entry runs the code
//! in it, so a directory someone else can write to is not used, and a
//! plugin refused at upload leaves nothing compiled behind.
//!
//! The plugins are plugins/examples/wat-delay in the WebAssembly text
//! format, with its name (and so its bytes) changed where a test needs a
//! second plugin.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use support::faultgate::{Faultgate, error_mentions};
use support::peers::echo_server;

fn wat_delay() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/wat-delay/wat-delay.wat");
    std::fs::read_to_string(path).unwrap()
}

/// wat-delay describing itself as `name` (which must have 9 bytes, the
/// length its description gives).
fn named(name: &str) -> Vec<u8> {
    assert_eq!(name.len(), 9);
    renamed(name, "09")
}

/// wat-delay describing itself as `name`, whose length in hex is `len`.
fn renamed(name: &str, len: &str) -> Vec<u8> {
    let text = wat_delay();
    let (data, length) = (
        "(data (i32.const 16) \"wat-delay\")",
        "\"\\10\\00\\00\\00\" \"\\09\\00\\00\\00\"   ;; name",
    );
    assert!(
        text.contains(data) && text.contains(length),
        "wat-delay.wat changed"
    );
    text.replace(data, &format!("(data (i32.const 16) \"{name}\")"))
        .replace(
            length,
            &format!("\"\\10\\00\\00\\00\" \"\\{len}\\00\\00\\00\"   ;; name"),
        )
        .into_bytes()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    found
}

fn is_root() -> bool {
    // Safety: geteuid only reads the process's credentials.
    unsafe { libc::geteuid() == 0 }
}

/// Compiles wat-delay into `cache` with a first faultgate, then plants its
/// compiled code under the name of the entry for `other`'s bytes, as
/// someone who can write to the directory could: a faultgate that trusted
/// the directory would run wat-delay's code for `other`.
async fn plant_wat_delay_as(cache: &Path, other: &[u8]) {
    let first = Faultgate::start(&["--plugin-cache", cache.to_str().unwrap()]).await;
    let (status, plugin) = first.upload_plugin(wat_delay().into_bytes()).await;
    assert_eq!(status, 201, "{plugin}");
    drop(first);
    let compiled = entries(cache);
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    let file = compiled[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let engine_key = file.split_once('-').unwrap().1;
    let planted = cache.join(format!(
        "{}-{engine_key}",
        faultgate::plugin_host::sha256_hex(other)
    ));
    std::fs::copy(&compiled[0], planted).unwrap();
}

#[tokio::test]
async fn a_plugin_cache_others_can_write_to_is_not_used() {
    let cache = tempfile::tempdir().unwrap();
    let other = named("wat-other");
    plant_wat_delay_as(cache.path(), &other).await;
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = entries(cache.path());

    let fg = Faultgate::start(&["--plugin-cache", cache.path().to_str().unwrap()]).await;
    let (status, plugin) = fg.upload_plugin(other).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(
        plugin["name"], "wat-other",
        "faultgate ran code planted in a world-writable cache"
    );
    let log = fg.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&cache.path().display().to_string()))
        .unwrap_or_else(|| panic!("no warning naming the cache directory:\n{log}"));
    assert!(warning.contains("writable by others"), "{warning}");
    assert!(warning.contains("run `chmod go-w "), "{warning}");
    assert_eq!(entries(cache.path()), before, "the cache was written to");
}

#[tokio::test]
async fn a_plugin_cache_owned_by_another_user_is_not_used() {
    // As root: a private directory handed to the postgres user, with an
    // entry planted in it. Otherwise: a directory root owns.
    let planted_in = tempfile::tempdir().unwrap();
    let other = named("wat-other");
    let cache = if is_root() {
        plant_wat_delay_as(planted_in.path(), &other).await;
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(planted_in.path())
            .status()
            .unwrap();
        assert!(status.success(), "chown to the postgres user failed");
        planted_in.path().to_owned()
    } else {
        PathBuf::from("/")
    };

    let fg = Faultgate::start(&["--plugin-cache", cache.to_str().unwrap()]).await;
    let (status, plugin) = fg.upload_plugin(other).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(
        plugin["name"], "wat-other",
        "faultgate ran code planted in another user's cache"
    );
    let log = fg.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&cache.display().to_string()))
        .unwrap_or_else(|| panic!("no warning naming the cache directory:\n{log}"));
    assert!(warning.contains("owned by uid"), "{warning}");
    assert!(warning.contains("run `chown "), "{warning}");
}

#[tokio::test]
async fn plugins_refused_at_upload_leave_nothing_in_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let fg = Faultgate::start(&["--plugin-cache", cache.path().to_str().unwrap()]).await;

    // Compiles, but is no faultgate plugin: an empty component.
    let (status, body) = fg.upload_plugin(b"\0asm\x0d\0\x01\0".to_vec()).await;
    error_mentions(status, &body, 400, "faultgate:plugin/meta");
    // Describes itself with a name that is not one.
    let (status, body) = fg.upload_plugin(named("wat delay")).await;
    error_mentions(status, &body, 400, "\"wat delay\"");
    // Would replace `latency` under a live toxic whose attributes it refuses.
    let (echo_addr, _) = echo_server().await;
    fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 300}}),
    )
    .await;
    let (status, body) = fg.upload_plugin(renamed("latency", "07")).await;
    error_mentions(status, &body, 400, "latency_downstream");
    assert_eq!(
        entries(cache.path()),
        Vec::<PathBuf>::new(),
        "refused plugins were left in the cache"
    );

    // One that is taken stays, for the next start.
    let (status, plugin) = fg.upload_plugin(wat_delay().into_bytes()).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(entries(cache.path()).len(), 1);
}
