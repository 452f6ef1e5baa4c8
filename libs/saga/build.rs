// `sqlx::migrate!` embeds the migrations at compile time; without this, an
// edited migration would not trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
