//! A forward proxy named in `http.proxy` (here through `--config`, as
//! cargo takes it) sees Convoy's uploads, as it sees cargo's.

use convoy_test_support::net::ForwardProxy;
use convoy_test_support::{Cargo, Server};

use crate::{BIN, cargo_publishes, convoy_publishes, index_lines, workspace};

#[test]
fn uploads_go_through_the_configured_proxy() {
    let server = Server::start(BIN, &[]);
    let token = server.token("alice", &[]);
    let cargo = Cargo::new(&server, Some(&token));
    let proxy = ForwardProxy::start();
    let setting = format!("http.proxy=\"{}\"", proxy.addr());
    let upload = format!("PUT {}/api/v1/crates/new", server.url);

    cargo_publishes(&cargo, "proxy-base", &["--config", &setting]);
    assert!(
        proxy.seen().contains(&upload),
        "cargo's upload went through the proxy: {:?}",
        proxy.seen()
    );
    proxy.clear();

    let root = workspace(&cargo, "proxied");
    convoy_publishes(&cargo, &root, &["--config", &setting]);
    assert!(index_lines(&server, "proxied-b").is_some());
    let seen = proxy.seen();
    let uploads = seen.iter().filter(|s| **s == upload).count();
    assert_eq!(
        uploads, 2,
        "both of Convoy's uploads went through the proxy: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s == &format!("GET {}/index/config.json", server.url)),
        "index reads went through the proxy too: {seen:?}"
    );
}
