//! The committed `xo-core/src/model/generated/` must be what the generator makes from `spec/`,
//! and two runs must agree byte for byte.

#[test]
fn generated_code_is_fresh_and_deterministic() {
    let root = xtask::workspace_root();
    let spec = xtask::load_spec(&root).expect("spec loads");
    let files = xtask::generate(&spec).expect("generator runs");
    let stale = xtask::stale_files(&root, &files);
    assert!(
        stale.is_empty(),
        "generated code in {} is stale ({}): run `cargo xtask codegen` and commit",
        xtask::OUT_DIR,
        stale.join(", ")
    );
    for (name, code) in &files {
        assert!(
            code.starts_with(xtask::HEADER),
            "{name} lacks the @generated header"
        );
    }
    let again = xtask::generate(&spec).expect("second run");
    assert!(
        files == again,
        "two generator runs differ: output is not deterministic"
    );
}
