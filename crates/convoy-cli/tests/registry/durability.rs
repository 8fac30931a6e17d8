//! Crashes and concurrency: what a 200 promises must survive kill -9, and
//! concurrent publishers must never lose or duplicate an index line.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use convoy_tarball::TarballBuilder;
use convoy_test_support::{Server, http};
use sha2::{Digest, Sha256};

use crate::{index_lines, meta, publish_raw, server};

fn tarball(name: &str, vers: &str, salt: &str) -> Vec<u8> {
    TarballBuilder::minimal(name, vers)
        .file(&format!("{name}-{vers}/salt.txt"), salt.as_bytes())
        .build()
}

fn download(server: &Server, name: &str, vers: &str) -> Option<Vec<u8>> {
    let resp = http()
        .get(format!(
            "{}/api/v1/crates/{name}/{vers}/download",
            server.url
        ))
        .send()
        .ok()?;
    (resp.status() == 200).then(|| resp.bytes().unwrap().to_vec())
}

#[test]
fn kill_9_during_publishes_loses_no_acknowledged_version() {
    let mut server = server(&[]);
    let token = server.token("alice", &[]);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let attempted: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url.clone();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (acked, attempted, stop, token, url) = (
                Arc::clone(&acked),
                Arc::clone(&attempted),
                Arc::clone(&stop),
                token.clone(),
                url.clone(),
            );
            std::thread::spawn(move || {
                // Bounded: at most 200 uploads per worker.
                for i in 0..200 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("crash-{t}-{i}");
                    let bytes = tarball(&name, "1.0.0", "first");
                    attempted.lock().unwrap().push(name.clone());
                    let body = convoy_protocol::publish::encode_publish_body(
                        &serde_json::to_vec(&meta(&name, "1.0.0")).unwrap(),
                        &bytes,
                    );
                    let resp = http()
                        .put(format!("{url}/api/v1/crates/new"))
                        .header("Authorization", &token)
                        .body(body)
                        .send();
                    match resp {
                        Ok(r) if r.status() == 200 => acked
                            .lock()
                            .unwrap()
                            .push((name, hex::encode(Sha256::digest(&bytes)))),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 40 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    server.restart();

    let acked = acked.lock().unwrap().clone();
    for (name, cksum) in &acked {
        let lines =
            index_lines(&server, name).unwrap_or_else(|| panic!("acknowledged {name} lost"));
        assert_eq!(lines.len(), 1, "{name}");
        assert_eq!(lines[0]["cksum"], *cksum, "{name}");
        let bytes = download(&server, name, "1.0.0").expect("acknowledged crate downloads");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), *cksum);
    }
    // Whatever else made it is whole; whatever did not can be published
    // again, even with different bytes.
    let token = server.token("alice", &[]);
    for name in attempted.lock().unwrap().iter() {
        match index_lines(&server, name) {
            Some(lines) => {
                assert_eq!(lines.len(), 1, "{name}");
                let bytes = download(&server, name, "1.0.0").expect("indexed crate downloads");
                assert_eq!(lines[0]["cksum"], hex::encode(Sha256::digest(&bytes)));
            }
            None => {
                let (status, body) = publish_raw(
                    &server,
                    Some(&token),
                    &meta(name, "1.0.0"),
                    &tarball(name, "1.0.0", "retry"),
                );
                assert_eq!(status, 200, "retry of {name}: {body}");
            }
        }
    }
}

#[test]
fn sixteen_concurrent_publishers_each_version_once() {
    let server = Arc::new(server(&[]));
    let token = server.token("alice", &[]);
    let (status, body) = publish_raw(
        &server,
        Some(&token),
        &meta("shared", "0.0.0"),
        &tarball("shared", "0.0.0", ""),
    );
    assert_eq!(status, 200, "{body}");
    let barrier = Arc::new(Barrier::new(16));
    let results: Vec<Vec<u16>> = (0..16)
        .map(|t| {
            let (server, token, barrier) =
                (Arc::clone(&server), token.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut statuses = Vec::new();
                // Everyone races for the same new crate first.
                let (s, _) = publish_raw(
                    &server,
                    Some(&token),
                    &meta("race", "1.0.0"),
                    &tarball("race", "1.0.0", &t.to_string()),
                );
                statuses.push(s);
                for i in 0..6 {
                    let vers = format!("1.{t}.{i}");
                    let (s, body) = publish_raw(
                        &server,
                        Some(&token),
                        &meta("shared", &vers),
                        &tarball("shared", &vers, ""),
                    );
                    assert_eq!(s, 200, "{vers}: {body}");
                    let own = format!("own-{t}");
                    let (s, body) = publish_raw(
                        &server,
                        Some(&token),
                        &meta(&own, &vers),
                        &tarball(&own, &vers, ""),
                    );
                    assert_eq!(s, 200, "{own} {vers}: {body}");
                }
                statuses
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();

    let race: Vec<u16> = results.iter().map(|s| s[0]).collect();
    assert_eq!(race.iter().filter(|s| **s == 200).count(), 1, "{race:?}");
    assert!(race.iter().all(|s| *s == 200 || *s == 409), "{race:?}");
    assert_eq!(index_lines(&server, "race").unwrap().len(), 1);

    let shared = index_lines(&server, "shared").unwrap();
    let versions: BTreeSet<String> = shared
        .iter()
        .map(|l| l["vers"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shared.len(), 1 + 16 * 6);
    assert_eq!(versions.len(), shared.len(), "no duplicate lines");
    for t in 0..16 {
        assert_eq!(index_lines(&server, &format!("own-{t}")).unwrap().len(), 6);
    }
}
