//! The committed `xo-core/src/model/generated/` must be what the generator makes from `spec/`.

#[test]
fn generated_code_is_fresh() {
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
}

#[test]
fn generator_is_deterministic() {
    let root = xtask::workspace_root();
    let spec = xtask::load_spec(&root).expect("spec loads");
    let a = xtask::generate(&spec).expect("first run");
    let b = xtask::generate(&spec).expect("second run");
    assert_eq!(a.len(), b.len());
    for ((na, ca), (nb, cb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ca == cb, "{na} differs between two runs");
    }
    for (name, code) in &a {
        assert!(
            code.starts_with(xtask::HEADER),
            "{name} lacks the @generated header"
        );
    }
}
