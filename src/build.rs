//! Build script: records the git revision for `upkeep --version` and `/healthz`
//! (`unknown` outside a git checkout, e.g. a crates.io build).

fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn main() {
    let revision =
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=UPKEEP_GIT_REVISION={revision}");
    // Rebuild when HEAD moves. In a worktree `.git` is a file: ask git where HEAD and the
    // branch refs live.
    match (
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) {
        (Some(git_dir), Some(common)) => {
            // Only paths that exist: a missing one would rerun this script every build.
            for path in [
                format!("{git_dir}/HEAD"),
                format!("{common}/refs/heads"),
                format!("{common}/packed-refs"),
            ] {
                if std::path::Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
        _ => {
            println!("cargo:rerun-if-changed=.git/HEAD");
            println!("cargo:rerun-if-changed=.git/refs/heads");
        }
    }
}
