//! The screenshots in `docs/screenshots/`, made by headless Chromium against
//! a registry with the example workspace published by `cargo convoy
//! publish`. Ignored by default; regenerate with
//! `cargo test -p convoy-cli --test web -- --ignored screenshots`.

use std::path::{Path, PathBuf};

use convoy_test_support::browser::screenshot;
use convoy_test_support::{REGISTRY, http};

use crate::{BIN, Fixture};

const CORE_README: &str = "# tour-core\n\nCore types of the Convoy tour example.\n\n\
## Usage\n\n```rust\nlet value = tour_core::value();\n```\n\n\
| Feature | What it adds |\n|---------|--------------|\n| `fancy` | nicer output |\n";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
#[ignore = "regenerates docs/screenshots; needs a few minutes of builds"]
fn screenshots() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fx = Fixture::new(&[]);
    let root = fx.cargo.root().join("tour");
    copy_dir(&repo.join("examples/tour"), &root);
    std::fs::write(root.join("tour-core/README.md"), CORE_README).unwrap();
    let out = fx
        .cargo
        .program(BIN, &root, &["convoy", "publish", "--registry", REGISTRY])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..3 {
        http()
            .get(fx.url("/api/v1/crates/tour-core/0.1.0/download"))
            .send()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let docs = repo.join("docs/screenshots");
    std::fs::create_dir_all(&docs).unwrap();
    screenshot(&fx.url("/"), &docs.join("home.png"), 1200, 800);
    screenshot(
        &fx.url("/search?q=tour"),
        &docs.join("search.png"),
        1200,
        800,
    );
    screenshot(
        &fx.url("/crates/tour-core"),
        &docs.join("crate.png"),
        1200,
        1400,
    );
}
