//! Plugins built the way their authors build them, in every language
//! `faultgate plugin new` writes: the scaffold, an edit, the language's own
//! build (cargo for Rust; for the others the toolchain that
//! scripts/toolchains/LANG installs), then `plugin check` and `POST
//! /plugins`, each waited for as long as a large component takes.
//!
//! A Python or JavaScript component carries its language's runtime (12 to
//! 18 MB): building one takes tens of seconds, and compiling it (Cranelift)
//! up to a minute on a busy machine. So a build is kept by the hash of its
//! sources, and faultgates started with [`start_sharing_compiles`] share one
//! compile cache: only the first run of the suite pays for either.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::faultgate::{Faultgate, run_to_exit, wait_bounded};

/// The longest a build, a check or an upload of one plugin may take.
const PATIENCE: Duration = Duration::from_secs(600);

/// A language `faultgate plugin new --lang` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// Its `--lang` value, which is also its folder under plugins/.
    pub fn flag(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    /// What `plugin new` says to build a scaffold with.
    fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release",
            Lang::Python => "componentize-py -d wit -w",
            Lang::Js => "npm install && npm run build",
            Lang::C => "sh build.sh",
        }
    }
}

/// A plugin `faultgate plugin new` wrote, in `root`.
pub struct Scaffold {
    pub root: PathBuf,
    pub lang: Lang,
    pub name: String,
    pub http: bool,
}

/// `faultgate plugin new NAME --lang LANG [--http] --dir DIR`, checked for
/// what it prints and writes.
pub fn scaffold(dir: &Path, name: &str, lang: Lang, http: bool) -> Scaffold {
    let mut args = vec![
        "plugin",
        "new",
        name,
        "--lang",
        lang.flag(),
        "--dir",
        dir.to_str().unwrap(),
    ];
    if http {
        args.push("--http");
    }
    let (code, output) = run_to_exit(&args);
    assert_eq!(
        code,
        Some(0),
        "plugin new --lang {lang:?} failed:\n{output}"
    );
    assert!(
        output.contains(lang.build_command()),
        "plugin new does not say how to build:\n{output}"
    );
    let scaffold = Scaffold {
        root: dir.join(name),
        lang,
        name: name.to_owned(),
        http,
    };
    let contract = match lang {
        Lang::Rust => "faultgate-guest/wit/faultgate.wit",
        _ => "wit/faultgate.wit",
    };
    for file in ["README.md", contract] {
        assert!(
            scaffold.root.join(file).exists(),
            "plugin new did not write {file}"
        );
    }
    assert!(
        scaffold.source().exists(),
        "plugin new did not write {}",
        scaffold.source().display()
    );
    if lang == Lang::Js {
        // The scaffold asks npm for the very tools faultgate tests with.
        let manifest = |path: PathBuf| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let asked = manifest(scaffold.root.join("package.json"));
        let tested = manifest(repo_root().join("plugins/js/toolchain/package.json"));
        for key in ["devDependencies", "overrides"] {
            assert_eq!(asked[key], tested[key], "package.json {key}");
        }
    }
    scaffold
}

impl Scaffold {
    /// The file holding the fault's code.
    pub fn source(&self) -> PathBuf {
        let file = self.name.replace('-', "_");
        self.root.join(match (self.lang, self.http) {
            (Lang::Rust, _) => "src/lib.rs".to_owned(),
            (Lang::Python, false) => "tcp.py".to_owned(),
            (Lang::Python, true) => "http_fault.py".to_owned(),
            (Lang::Js, _) => "app.js".to_owned(),
            (Lang::C, _) => format!("{file}.c"),
        })
    }

    /// Rewrites `file` (under the plugin's directory) with `edit`; panics
    /// when the edit changed nothing, which means the template changed
    /// under the test.
    pub fn edit(&self, file: &str, edit: impl FnOnce(&str) -> String) -> &Self {
        let path = self.root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = edit(&text);
        assert_ne!(text, edited, "the edit of {file} found nothing to change");
        std::fs::write(&path, edited).unwrap();
        self
    }

    /// Rewrites the fault's code with `edit` (see [`Scaffold::edit`]).
    pub fn edit_source(&self, edit: impl FnOnce(&str) -> String) -> &Self {
        let source = self.source();
        let file = source.strip_prefix(&self.root).unwrap().to_str().unwrap();
        self.edit(file, edit)
    }

    /// Puts the files of a plugin of this repository (plugins/LANG/NAME,
    /// its README aside) over the scaffold's: such a plugin is a scaffold
    /// of its language with its own code in place of the template's.
    pub fn with_code_of_repo_plugin(self) -> Self {
        let source = repo_root()
            .join("plugins")
            .join(self.lang.flag())
            .join(&self.name);
        for entry in std::fs::read_dir(&source).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().unwrap() != "README.md" {
                std::fs::copy(&path, self.root.join(path.file_name().unwrap())).unwrap();
            }
        }
        self
    }

    /// The contract world it is built for.
    pub fn world(&self) -> &'static str {
        if self.http {
            "http-plugin"
        } else {
            "tcp-plugin"
        }
    }

    /// Builds it as its README says; the component, or what the build said
    /// when it failed.
    pub fn try_build(&self) -> Result<PathBuf, String> {
        if self.lang == Lang::Rust {
            return self.cargo_build();
        }
        let kept = self.kept_build();
        if kept.exists() {
            return Ok(kept);
        }
        let file = self.name.replace('-', "_");
        let (mut command, made) = match self.lang {
            Lang::Python => {
                let mut command = Command::new(toolchain("python", "bin/componentize-py"));
                command
                    .args(["-d", "wit", "-w", self.world(), "componentize", "app", "-o"])
                    .arg(format!("{file}.wasm"));
                (command, self.root.join(format!("{file}.wasm")))
            }
            Lang::Js => {
                // The toolchain's node_modules, in place of what `npm
                // install` would fetch again.
                let modules = js_node_modules();
                let link = self.root.join("node_modules");
                if !link.exists() {
                    std::os::unix::fs::symlink(modules, link).unwrap();
                }
                let mut command = Command::new("npm");
                command.args(["run", "--silent", "build"]);
                (command, self.root.join(format!("{}.wasm", self.name)))
            }
            Lang::C => {
                let clang = Command::new("clang").arg("--version").output();
                assert!(
                    clang.is_ok_and(|out| out.status.success()),
                    "clang is missing: run scripts/toolchains/c (scripts/test runs it)"
                );
                let mut command = Command::new("sh");
                command
                    .arg("build.sh")
                    .env("WASM_TOOLS", toolchain("c", "bin/wasm-tools"));
                (command, self.root.join(format!("build/{file}.wasm")))
            }
            Lang::Rust => unreachable!(),
        };
        let child = command
            .current_dir(&self.root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the plugin's build");
        let (status, output) = wait_bounded(child, PATIENCE);
        if !status.success() || !made.exists() {
            return Err(output);
        }
        let partial = kept.with_extension(format!("{}.partial", std::process::id()));
        std::fs::copy(&made, &partial).unwrap();
        std::fs::rename(&partial, &kept).unwrap();
        Ok(kept)
    }

    /// Like [`Scaffold::try_build`], panicking when the build fails.
    pub fn build(&self) -> PathBuf {
        self.try_build().unwrap_or_else(|output| {
            panic!(
                "building {} ({:?}) failed:\n{output}",
                self.root.display(),
                self.lang
            )
        })
    }

    /// `cargo build --release`, with one target directory for every run so
    /// that only the first builds the dependencies.
    fn cargo_build(&self) -> Result<PathBuf, String> {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let child = Command::new(cargo)
            .current_dir(&self.root)
            .args(["build", "--release"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            // The test command builds faultgate itself through clippy
            // (scripts/test); a user's plugin builds with plain rustc.
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CLIPPY_ARGS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, output) = wait_bounded(child, PATIENCE);
        if !status.success() {
            return Err(output);
        }
        Ok(target
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", self.name.replace('-', "_"))))
    }

    /// Where the build of these very sources is kept: by the hash of the
    /// language, the world and every source file (not what a build wrote).
    fn kept_build(&self) -> PathBuf {
        let mut hashed = format!("{:?} {}\n", self.lang, self.world()).into_bytes();
        let mut pending = vec![self.root.clone()];
        let mut files = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap();
                if matches!(name, "node_modules" | "build" | "__pycache__")
                    || name.ends_with(".wasm")
                {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        for file in files {
            hashed.extend(
                file.strip_prefix(&self.root)
                    .unwrap()
                    .as_os_str()
                    .as_encoded_bytes(),
            );
            hashed.extend(std::fs::read(&file).unwrap());
        }
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-builds");
        std::fs::create_dir_all(&kept).unwrap();
        kept.join(format!(
            "{}.wasm",
            faultgate::plugin_host::sha256_hex(&hashed)
        ))
    }
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool of a language's toolchain, installed under target/toolchains/LANG
/// by scripts/toolchains/LANG; panics naming that script when it is missing.
fn toolchain(lang: &str, tool: &str) -> PathBuf {
    let path = repo_root().join("target/toolchains").join(lang).join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/toolchains/{lang} (scripts/test runs it)",
        path.display()
    );
    path
}

/// The JavaScript toolchain (jco and componentize-js from npm, at the
/// versions every scaffold asks for), installed in plugins/js/toolchain/ by
/// scripts/toolchains/js.
pub fn js_node_modules() -> PathBuf {
    let modules = repo_root().join("plugins/js/toolchain/node_modules");
    assert!(
        modules.join(".bin/jco").exists(),
        "the JavaScript plugin toolchain is missing: run scripts/toolchains/js \
         (scripts/test runs it)"
    );
    modules
}

/// `faultgate plugin check WASM`, waited for as long as a compile takes;
/// the exit code and what it printed.
pub fn check(wasm: &Path) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_faultgate"))
        .args(["plugin", "check"])
        .arg(wasm)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting faultgate");
    let (status, output) = wait_bounded(child, PATIENCE);
    (status.code(), output)
}

/// The compile cache faultgates of these tests share (a directory only this
/// user can write to, as faultgate requires).
fn shared_compile_cache() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-compile-cache");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// `faultgate serve EXTRA...` with the compile cache these tests share, for
/// the large components of Python and JavaScript plugins.
pub async fn start_sharing_compiles(extra: &[&str]) -> Faultgate {
    let cache = shared_compile_cache();
    let mut args = vec!["--plugin-cache", cache.to_str().unwrap()];
    args.extend(extra);
    Faultgate::start(&args).await
}
