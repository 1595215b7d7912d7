//! Compiled plugins on disk, so a restart does not compile them again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled plugins on disk, keyed by the SHA-256 of the component and by
/// everything in the engine that compiled code depends on (wasmtime's version
/// and settings), so a stale entry is never used.
///
/// Loading an entry runs the code in it, so the directory is used only if
/// no one but the user faultgate runs as (and root) can change what is in
/// it, as ssh checks the files it trusts: [`CompileCache::open`]. It is
/// created with mode 0700, its entries 0600.
pub(super) struct CompileCache {
    dir: PathBuf,
    engine_key: u64,
}

impl CompileCache {
    /// The cache in `dir`, or none (with a warning saying what is wrong) if
    /// someone else could write to it.
    pub fn open(dir: PathBuf, engine: &Engine) -> Option<Self> {
        if let Err(problem) = writable_only_by_this_user(&dir) {
            tracing::warn!(
                cache = %dir.display(),
                %problem,
                "not using the plugin compile cache: loading an entry runs its code, so no other user may be able to write to it; going on without it"
            );
            return None;
        }
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(Self {
            dir,
            engine_key: hasher.finish(),
        })
    }

    fn entry(&self, bytes: &[u8]) -> PathBuf {
        self.dir.join(format!(
            "{}-{:016x}.cwasm",
            sha256_hex(bytes),
            self.engine_key
        ))
    }

    pub fn component(
        &self,
        engine: &Engine,
        source_name: &str,
        bytes: &[u8],
    ) -> Result<Component, String> {
        let path = self.entry(bytes);
        if path.exists() {
            match written_by_this_user(&path) {
                // Safety: the file was written by `precompile_component` of
                // an engine with the same compatibility hash, by this user,
                // into a directory only this user (or root) can write to.
                Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(component) => {
                        tracing::info!(plugin = source_name, cache = %path.display(), "plugin loaded from the compile cache");
                        return Ok(component);
                    }
                    Err(error) => {
                        tracing::warn!(cache = %path.display(), %error, "unusable compile cache entry; recompiling")
                    }
                },
                Err(problem) => {
                    tracing::warn!(cache = %path.display(), %problem, "compile cache entry not used; recompiling")
                }
            }
        }
        let started = std::time::Instant::now();
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| format!("{e:#}"))?;
        tracing::info!(plugin = source_name, took = ?started.elapsed(), "plugin compiled");
        if let Err(error) = self.store(&path, &compiled) {
            tracing::warn!(cache = %self.dir.display(), %error, "cannot write the compile cache; going on without it");
        }
        // Safety: `compiled` was just produced by this engine.
        unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| format!("{e:#}"))
    }

    /// Removes the entry of a plugin that was refused, so its code is not
    /// kept for ever.
    pub fn remove(&self, bytes: &[u8]) {
        let path = self.entry(bytes);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::debug!(cache = %path.display(), "compile cache entry of a refused plugin removed")
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(cache = %path.display(), %error, "cannot remove the compile cache entry of a refused plugin")
            }
        }
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let partial = path.with_extension(format!("partial{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?
            .write_all(compiled)?;
        std::fs::rename(&partial, path)
    }
}

/// The user faultgate runs as.
fn this_user() -> u32 {
    // Safety: geteuid only reads the process's credentials.
    unsafe { libc::geteuid() }
}

/// What lets someone other than this user (or root) change what is in
/// `dir`: `dir` itself must be this user's, and it and every directory
/// above it (symbolic links resolved) this user's or root's and writable by
/// no one else (a sticky directory such as /tmp excepted above it, since no
/// one can move another user's entry out of it). Parts of the path that do
/// not exist yet will be made by this user, mode 0700.
fn writable_only_by_this_user(dir: &Path) -> Result<(), String> {
    let user = this_user();
    let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut existing: &Path = &dir;
    let real = loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => break real,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                existing = existing
                    .parent()
                    .ok_or_else(|| format!("{}: {error}", dir.display()))?;
            }
            Err(error) => return Err(format!("{}: {error}", existing.display())),
        }
    };
    let itself = existing == dir;
    for (i, path) in real.ancestors().enumerate() {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let is_cache = itself && i == 0;
        if is_cache && !meta.is_dir() {
            return Err(format!("{} is not a directory", path.display()));
        }
        let owner = meta.uid();
        if owner != user && (is_cache || owner != 0) {
            return Err(format!(
                "{} is owned by uid {owner}, not by uid {user} that faultgate runs as \
                 (run `chown {user} {}`, or give --plugin-cache a directory of this user's)",
                path.display(),
                path.display()
            ));
        }
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && (is_cache || !sticky) {
            return Err(format!(
                "{} is writable by {} (mode {mode:04o}; run `chmod go-w {}`)",
                path.display(),
                who_else(mode),
                path.display()
            ));
        }
    }
    Ok(())
}

/// Why an entry is not to be loaded: written by someone else, or writable by
/// someone else.
fn written_by_this_user(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.uid() != this_user() {
        return Err(format!("owned by uid {}", meta.uid()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!("writable by {} (mode {mode:04o})", who_else(mode)));
    }
    Ok(())
}

/// Who besides the owner may write, by a mode that lets someone.
fn who_else(mode: u32) -> &'static str {
    if mode & 0o002 != 0 {
        "others"
    } else {
        "its group"
    }
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
