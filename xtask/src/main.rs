//! `cargo xtask codegen [--check]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["codegen"] => false,
        ["codegen", "--check"] => true,
        _ => {
            eprintln!("usage: cargo xtask codegen [--check]");
            return ExitCode::from(2);
        }
    };
    let root = xtask::workspace_root();
    let files = match xtask::load_spec(&root).and_then(|spec| xtask::generate(&spec)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("codegen failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        let stale = xtask::stale_files(&root, &files);
        if stale.is_empty() {
            println!("{} generated files are up to date", files.len());
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "stale generated files in {}: {}",
            xtask::OUT_DIR,
            stale.join(", ")
        );
        eprintln!("run `cargo xtask codegen` and commit");
        return ExitCode::FAILURE;
    }
    match xtask::write_files(&root, &files) {
        Ok(n) => {
            println!("wrote {n} of {} files in {}", files.len(), xtask::OUT_DIR);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("codegen failed: {e}");
            ExitCode::FAILURE
        }
    }
}
