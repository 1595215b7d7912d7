//! Compiled plugins on disk, so a restart does not compile them again.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled plugins on disk, keyed by the SHA-256 of the component and by
/// everything in the engine that compiled code depends on (wasmtime's version
/// and settings), so a stale entry is never used.
///
/// Loading an entry runs the code in it: the directory must be writable only
/// by the user faultgate runs as (it is created with mode 0700).
pub(super) struct CompileCache {
    dir: PathBuf,
    engine_key: u64,
}

impl CompileCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: hasher.finish(),
        }
    }

    pub fn component(
        &self,
        engine: &Engine,
        source_name: &str,
        bytes: &[u8],
    ) -> Result<Component, String> {
        let path = self.dir.join(format!(
            "{}-{:016x}.cwasm",
            sha256_hex(bytes),
            self.engine_key
        ));
        if path.exists() {
            // Safety: the file was written by `precompile_component` of an
            // engine with the same compatibility hash, into a directory only
            // faultgate writes (see the type's documentation).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    tracing::info!(plugin = source_name, cache = %path.display(), "plugin loaded from the compile cache");
                    return Ok(component);
                }
                Err(error) => {
                    tracing::warn!(cache = %path.display(), %error, "unusable compile cache entry; recompiling")
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

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let partial = path.with_extension(format!("partial{}", std::process::id()));
        std::fs::write(&partial, compiled)?;
        std::fs::rename(&partial, path)
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
