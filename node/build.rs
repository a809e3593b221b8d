//! Builds `csrc/longdouble.c` (see the comment at its top for why it exists).
fn main() {
    println!("cargo:rerun-if-changed=csrc/longdouble.c");
    cc::Build::new()
        .file("csrc/longdouble.c")
        .opt_level(2)
        .compile("corekey_longdouble");
}
