//! Three stateless `cargo convoy serve` nodes on one PostgreSQL database and
//! one S3 bucket (a real `s3s-fs`), behind a round-robin balancer that sends
//! every request to the next node: they must behave as one registry.
//! Skipped, with a message, when PostgreSQL or s3s-fs is not installed
//! (`.ci/run` installs both and makes a missing one a failure).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use convoy_tarball::TarballBuilder;
use convoy_test_support::balancer::Balancer;
use convoy_test_support::{Cargo, REGISTRY, Server, SharedBackend, http, manifest};
use sha2::{Digest, Sha256};

use crate::{BIN, index_lines, meta};

/// Three nodes and the balancer in front of them.
struct Cluster {
    balancer: Balancer,
    nodes: Vec<Server>,
    shared: SharedBackend,
    token: String,
}

impl Cluster {
    fn start(nodes: usize) -> Option<Self> {
        let shared = SharedBackend::postgres_with_s3()?;
        let balancer = Balancer::bind();
        let public = balancer.url.clone();
        let nodes: Vec<Server> = (0..nodes)
            .map(|_| Server::start_shared(BIN, &shared, &["--public-url", &public], &[]))
            .collect();
        balancer.set_nodes(nodes.iter().map(|n| n.url.clone()).collect());
        // A token made on one node works on every node.
        let token = nodes[0].token("alice", &[]);
        Some(Self {
            balancer,
            nodes,
            shared,
            token,
        })
    }

    /// A fresh node on the same shared state: no local state at all.
    fn fresh_node(&self) -> Server {
        Server::start_shared(
            BIN,
            &self.shared,
            &["--public-url", &self.balancer.url],
            &[],
        )
    }

    fn publish(&self, url: &str, name: &str, vers: &str, bytes: &[u8]) -> (u16, String) {
        let body = convoy_protocol::publish::encode_publish_body(
            &serde_json::to_vec(&meta(name, vers)).unwrap(),
            bytes,
        );
        match http()
            .put(format!("{url}/api/v1/crates/new"))
            .header("Authorization", &self.token)
            .body(body)
            .send()
        {
            Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }
}

fn tarball(name: &str, vers: &str, salt: &str) -> Vec<u8> {
    TarballBuilder::minimal(name, vers)
        .file(&format!("{name}-{vers}/salt.txt"), salt.as_bytes())
        .build()
}

fn download(url: &str, name: &str, vers: &str) -> Option<Vec<u8>> {
    let resp = http()
        .get(format!("{url}/api/v1/crates/{name}/{vers}/download"))
        .send()
        .ok()?;
    (resp.status() == 200).then(|| resp.bytes().unwrap().to_vec())
}

fn versions(node: &Server, name: &str) -> Vec<String> {
    index_lines(node, name)
        .unwrap_or_default()
        .iter()
        .map(|l| l["vers"].as_str().unwrap().to_owned())
        .collect()
}

/// cargo publishes through the balancer; the moment it returns, every node
/// answers the new version; then a consumer resolves, downloads and builds
/// through the balancer, its requests spread over all three nodes.
#[test]
fn cargo_publishes_and_builds_through_the_balancer() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let cargo = Cargo::for_index(&cluster.balancer.index_url(), Some(&cluster.token));
    for version in ["0.1.0", "0.2.0"] {
        let dir = cargo.project(
            &format!("lib-{version}"),
            &[
                ("Cargo.toml", &manifest("spread-lib", version, "")),
                (
                    "src/lib.rs",
                    &format!("pub fn version() -> &'static str {{ \"{version}\" }}\n"),
                ),
            ],
        );
        cargo.ok(&dir, &["publish", "--registry", REGISTRY, "--allow-dirty"]);
        for (i, node) in cluster.nodes.iter().enumerate() {
            assert!(
                versions(node, "spread-lib").contains(&version.to_owned()),
                "node {i} does not answer spread-lib {version} right after the publish"
            );
        }
    }
    let app = cargo.project(
        "app",
        &[
            (
                "Cargo.toml",
                &format!(
                    "[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nspread-lib = {{ version = \"0.2\", registry = \"{REGISTRY}\" }}\n"
                ),
            ),
            (
                "src/main.rs",
                "fn main() { println!(\"{}\", spread_lib::version()); }\n",
            ),
        ],
    );
    let out = cargo.ok(&app, &["run", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0.2.0");
    let hits = cluster.balancer.hits();
    assert!(
        hits.iter().all(|h| *h > 0),
        "every node served part of the traffic: {hits:?}"
    );
    // Downloads are counted in memory on whichever node served them and
    // meet in the database: periodically, and on SIGTERM at the latest.
    for _ in 0..5 {
        assert!(download(&cluster.nodes[0].url, "spread-lib", "0.2.0").is_some());
    }
    let database = cluster.shared.database.clone();
    for mut node in cluster.nodes {
        assert!(node.terminate().success());
    }
    let total = convoy_test_support::postgres::cluster().unwrap().psql(
        &database,
        "SELECT v.downloads FROM versions v JOIN crates c ON c.id = v.crate_id
         WHERE c.canonical = 'spread_lib' AND v.num = '0.2.0'",
    );
    assert_eq!(total, "6", "cargo's download and five more, none lost");
}

/// Six publishes of one version, with different bytes, spread over the
/// nodes at once: exactly one 200, and every node has that one line.
#[test]
fn six_racing_publishes_of_one_version_one_wins() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let (status, body) = cluster.publish(
        &cluster.balancer.url,
        "raced",
        "0.0.1",
        &tarball("raced", "0.0.1", "seed"),
    );
    assert_eq!(status, 200, "{body}");
    let cluster = Arc::new(cluster);
    let barrier = Arc::new(Barrier::new(6));
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let (cluster, barrier) = (Arc::clone(&cluster), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let bytes = tarball("raced", "1.0.0", &format!("racer {i}"));
                // Two racers per node, each straight at its node.
                let url = cluster.nodes[i % 3].url.clone();
                barrier.wait();
                let (status, body) = cluster.publish(&url, "raced", "1.0.0", &bytes);
                (status, body, hex::encode(Sha256::digest(&bytes)))
            })
        })
        .collect();
    let results: Vec<(u16, String, String)> =
        racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<&(u16, String, String)> = results.iter().filter(|r| r.0 == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body, _) in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(*status, 409, "{body}");
        assert!(body.contains("already uploaded"), "{body}");
    }
    let cksum = &winners[0].2;
    for node in &cluster.nodes {
        let lines = index_lines(node, "raced").unwrap();
        let raced: Vec<_> = lines.iter().filter(|l| l["vers"] == "1.0.0").collect();
        assert_eq!(raced.len(), 1);
        assert_eq!(raced[0]["cksum"], cksum.as_str());
        let bytes = download(&node.url, "raced", "1.0.0").unwrap();
        assert_eq!(&hex::encode(Sha256::digest(&bytes)), cksum);
    }
}

/// kill -9 of one node during a stream of publishes through the balancer:
/// every acknowledged version is on the surviving nodes, and a node started
/// afterwards with no local state serves all of them.
#[test]
fn kill_9_of_a_node_loses_no_acknowledged_version() {
    let Some(mut cluster) = Cluster::start(3) else {
        return;
    };
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new((cluster.balancer.url.clone(), cluster.token.clone()));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (acked, stop, shared) =
                (Arc::clone(&acked), Arc::clone(&stop), Arc::clone(&shared));
            std::thread::spawn(move || {
                // Bounded: at most 150 uploads per worker.
                for i in 0..150 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("stream-{t}-{i}");
                    let bytes = tarball(&name, "1.0.0", "x");
                    let body = convoy_protocol::publish::encode_publish_body(
                        &serde_json::to_vec(&meta(&name, "1.0.0")).unwrap(),
                        &bytes,
                    );
                    let resp = http()
                        .put(format!("{}/api/v1/crates/new", shared.0))
                        .header("Authorization", &shared.1)
                        .body(body)
                        .send();
                    if let Ok(r) = resp
                        && r.status() == 200
                    {
                        acked
                            .lock()
                            .unwrap()
                            .push((name, hex::encode(Sha256::digest(&bytes))));
                    }
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while acked.lock().unwrap().len() < n {
            assert!(std::time::Instant::now() < deadline, "publishes stalled");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    wait_for(30);
    cluster.nodes[0].kill9();
    // The stream goes on through the two survivors.
    let at_kill = acked.lock().unwrap().len();
    wait_for(at_kill + 30);
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let fresh = cluster.fresh_node();
    for node in [&cluster.nodes[1], &cluster.nodes[2], &fresh] {
        for (name, cksum) in &acked {
            let lines = index_lines(node, name)
                .unwrap_or_else(|| panic!("acknowledged {name} missing on {}", node.url));
            assert_eq!(lines.len(), 1, "{name}");
            assert_eq!(lines[0]["cksum"], cksum.as_str(), "{name}");
        }
        // Downloads from the shared bucket, for a sample.
        for (name, cksum) in acked.iter().step_by(10) {
            let bytes = download(&node.url, name, "1.0.0").expect("acknowledged crate downloads");
            assert_eq!(&hex::encode(Sha256::digest(&bytes)), cksum);
        }
    }
}

/// An atomic release committed through the balancer while readers poll
/// every node directly: no reader on any node ever sees part of it.
#[test]
fn atomic_release_is_never_partly_visible_on_any_node() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let lb = &cluster.balancer.url;
    let resp = http()
        .post(format!("{lb}/api/v1/convoy/stages"))
        .header("Authorization", &cluster.token)
        .body("{\"ttl_secs\": 600}")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let stage: serde_json::Value = resp.json().unwrap();
    let stage_id = stage["id"].as_str().unwrap().to_owned();
    let stage_token = stage["token"].as_str().unwrap().to_owned();
    let names: Vec<String> = (0..5).map(|i| format!("atom-{i}")).collect();
    for name in &names {
        let body = convoy_protocol::publish::encode_publish_body(
            &serde_json::to_vec(&meta(name, "1.0.0")).unwrap(),
            &tarball(name, "1.0.0", "atom"),
        );
        let resp = http()
            .put(format!("{lb}/api/v1/crates/new"))
            .header("Authorization", &stage_token)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    for node in &cluster.nodes {
        assert!(
            index_lines(node, &names[0]).is_none(),
            "staged is invisible"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = cluster
        .nodes
        .iter()
        .map(|node| {
            let (url, names, stop) = (node.url.clone(), names.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let client = http();
                let mut rounds = 0usize;
                let mut seen_whole = false;
                // Once one file of the release is seen, every file read
                // after it must be there too: visibility is atomic and
                // never goes back.
                loop {
                    let last = stop.load(Ordering::SeqCst);
                    let mut seen = false;
                    let mut visible = BTreeSet::new();
                    for name in &names {
                        let path = convoy_protocol::index::index_path(name);
                        let status = client
                            .get(format!("{url}/index/{path}"))
                            .send()
                            .unwrap()
                            .status();
                        let here = status == 200;
                        assert!(
                            !seen || here,
                            "{url}: {name} missing after others were seen"
                        );
                        seen |= here;
                        if here {
                            visible.insert(name.clone());
                        }
                    }
                    assert!(
                        !seen_whole || visible.len() == names.len(),
                        "{url} went back"
                    );
                    seen_whole |= visible.len() == names.len();
                    rounds += 1;
                    if last {
                        return (rounds, seen_whole);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let resp = http()
        .post(format!("{lb}/api/v1/convoy/stages/{stage_id}/commit"))
        .header("Authorization", &cluster.token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
    // Right after the commit returns, every node has all of it.
    for node in &cluster.nodes {
        for name in &names {
            assert!(index_lines(node, name).is_some(), "{name} on {}", node.url);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        let (rounds, whole) = r.join().unwrap();
        assert!(rounds > 1 && whole, "{rounds} rounds");
    }
}

/// `cargo convoy token create --database URL` with no server running: the
/// token works on every node started later.
#[test]
fn token_create_works_on_the_database_without_a_server() {
    let Some(shared) = SharedBackend::postgres_with_s3() else {
        return;
    };
    let out = std::process::Command::new(BIN)
        .args([
            "token",
            "create",
            "--database",
            &shared.database,
            "--user",
            "carol",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("cvy_"));
    // The same through the environment, as a deployment would set it.
    let out = std::process::Command::new(BIN)
        .args(["token", "create", "--user", "dave"])
        .env("CONVOY_DATABASE_URL", &shared.database)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = std::process::Command::new(BIN)
        .args(["serve", "--database", &shared.database])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("needs `--storage`"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let node = Server::start_shared(BIN, &shared, &[], &[]);
    let bytes = tarball("carols", "1.0.0", "");
    let body = convoy_protocol::publish::encode_publish_body(
        &serde_json::to_vec(&meta("carols", "1.0.0")).unwrap(),
        &bytes,
    );
    let resp = http()
        .put(format!("{}/api/v1/crates/new", node.url))
        .header("Authorization", &token)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn migrate(from: &std::path::Path, shared: &SharedBackend) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["migrate", "--from-data"])
        .arg(from)
        .args(["--database", &shared.database, "--storage", &shared.storage])
        .envs(shared.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

/// `cargo convoy migrate`: an embedded registry, copied into PostgreSQL and
/// S3, serves the same index files, bytes, tokens, owners and download
/// counts; a second run copies nothing, a run after more publishes copies
/// just those, and a blob that does not match its index line stops it.
#[test]
fn migrate_copies_an_embedded_registry_idempotently() {
    let Some(shared) = SharedBackend::postgres_with_s3() else {
        return;
    };
    let embedded = Server::start(BIN, &[]);
    assert!(embedded.shared().is_none());
    let token = embedded.token("alice", &[]);
    let send = |server: &Server, name: &str, vers: &str| {
        let body = convoy_protocol::publish::encode_publish_body(
            &serde_json::to_vec(&meta(name, vers)).unwrap(),
            &tarball(name, vers, "migrated"),
        );
        http()
            .put(format!("{}/api/v1/crates/new", server.url))
            .header("Authorization", &token)
            .body(body)
            .send()
            .unwrap()
            .status()
    };
    let names = ["mig-a", "mig-b", "m"];
    for name in names {
        for vers in ["1.0.0", "1.1.0"] {
            assert_eq!(send(&embedded, name, vers), 200);
        }
    }
    let yank = http()
        .delete(format!("{}/api/v1/crates/mig-a/1.1.0/yank", embedded.url))
        .header("Authorization", &token)
        .send()
        .unwrap();
    assert_eq!(yank.status(), 200);
    for _ in 0..3 {
        assert!(download(&embedded.url, "mig-b", "1.0.0").is_some());
    }
    // SIGTERM writes the buffered counts.
    let mut embedded = embedded;
    assert!(embedded.terminate().success());
    embedded.restart();

    // While the embedded server keeps running.
    let out = migrate(embedded.data(), &shared);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("6 versions copied, 0 already present"),
        "{stderr}"
    );

    let node = Server::start_shared(BIN, &shared, &[], &[]);
    for name in names {
        assert_eq!(
            index_lines(&node, name),
            index_lines(&embedded, name),
            "{name}"
        );
        for vers in ["1.0.0", "1.1.0"] {
            assert_eq!(
                download(&node.url, name, vers),
                download(&embedded.url, name, vers),
                "{name}@{vers}"
            );
        }
    }
    assert_eq!(index_lines(&node, "mig-a").unwrap()[1]["yanked"], true);
    // The old token still works: only its hash was ever stored, and copied.
    assert_eq!(send(&node, "mig-a", "2.0.0"), 200);

    let again = migrate(embedded.data(), &shared);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("0 versions copied, 6 already present"),
        "{stderr}"
    );

    // Resumable: what was published since is copied, and only that.
    assert_eq!(send(&embedded, "mig-c", "0.1.0"), 200);
    let more = migrate(embedded.data(), &shared);
    let stderr = String::from_utf8_lossy(&more.stderr);
    assert!(more.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 versions copied, 6 already present"),
        "{stderr}"
    );
    assert_eq!(index_lines(&node, "mig-c"), index_lines(&embedded, "mig-c"));
    let count = convoy_test_support::postgres::cluster().unwrap().psql(
        &shared.database,
        "SELECT v.downloads FROM versions v JOIN crates c ON c.id = v.crate_id
         WHERE c.canonical = 'mig_b' AND v.num = '1.0.0'",
    );
    assert!(count == "3", "download counts are copied once: {count}");

    // A damaged blob stops the migration, naming it.
    let Some(fresh) = SharedBackend::postgres_with_s3() else {
        return;
    };
    let cksum = index_lines(&embedded, "mig-b").unwrap()[0]["cksum"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = embedded
        .data()
        .join("crates")
        .join(&cksum[..2])
        .join(format!("{cksum}.crate"));
    std::fs::write(&blob, b"not the crate").unwrap();
    let bad = migrate(embedded.data(), &fresh);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("`mig-b@1.0.0` has sha256") && stderr.contains(&cksum),
        "{stderr}"
    );
}
