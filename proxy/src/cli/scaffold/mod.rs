//! `faultgate plugin new`: a plugin, in the language asked for, that builds
//! as it is with that language's own tools and has the effect its template
//! promises once loaded.
//!
//! Each language is one file here that says what to write and how to build
//! it; this file checks the name, writes the files and says what to do next.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

mod c;
mod js;
mod python;
mod rust;

/// The plugin contract, copied into every scaffold so that it builds on its
/// own.
const CONTRACT: &str = include_str!("../../../../wit/faultgate.wit");

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name: the toxic `type` it is attached by. Letters,
    /// digits, '-' and '_'.
    name: String,

    /// Where to create the plugin (a directory NAME inside it).
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,

    /// The language to write it in. Each builds with its own tools; the
    /// scaffold's README.md says which and how.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,

    /// An HTTP fault (request-aware, for proxies in http mode) instead of a
    /// TCP one.
    #[arg(long)]
    http: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Lang {
    /// A crate, built with cargo for wasm32-wasip2.
    Rust,
    /// A module, built with componentize-py (PyPI).
    Python,
    /// A module, built with jco componentize (npm).
    Js,
    /// A C file, built with clang for wasm32 and made a component.
    C,
}

/// What a language's scaffold is: the files to write (paths relative to the
/// plugin's directory), the command that builds it, run in that directory,
/// and the component that command makes.
struct Template {
    files: Vec<(String, String)>,
    build: String,
    component: String,
}

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.as_str();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!(
            "{name:?} is not a plugin name: start with a letter, then letters, digits, '-' or '_'"
        );
    }
    let root = args.dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let template = match args.lang {
        Lang::Rust => rust::template(name, args.http),
        Lang::Python => python::template(name, args.http)?,
        Lang::Js => js::template(name, args.http)?,
        Lang::C => c::template(name, args.http),
    };
    for (path, text) in &template.files {
        write(&root, path, text)?;
    }
    println!(
        "created {root}\n\nbuild it:   cd {root} && {build}\ncheck it:   faultgate plugin check {root}/{component}\nload it:    faultgate serve --plugin {root}/{component}\n            (or POST the .wasm to a running faultgate's /plugins)",
        root = root.display(),
        build = template.build,
        component = template.component,
    );
    Ok(ExitCode::SUCCESS)
}

fn write(root: &Path, relative: &str, text: &str) -> anyhow::Result<()> {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap())
        .with_context(|| format!("creating {}", path.parent().unwrap().display()))?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// `my-fault` as a type name: `MyFault`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}
