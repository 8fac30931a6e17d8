//! The scheduler: one task per crate, each gated on its local dependencies
//! becoming *visible in the index*, never on a wave of siblings.
//!
//! Every crate moves through the same steps:
//!
//! 1. read its index file (bounded by the index slots, which start at once
//!    for every crate so that no upload slot waits on a skip check);
//!    same cksum → skipped, other cksum → failed, absent → continue;
//! 2. wait until each local dependency in the job is visible (or skipped);
//!    if one failed, stop as blocked, naming the root failures;
//! 3. dry run: stop here;
//! 4. pace (crates.io), then `PUT` inside an upload slot (`-j`), retrying
//!    429s after `Retry-After` and transient failures with backoff; before a
//!    retry after a failure that may hide a success, look in the index;
//! 5. release the slot and poll the index until the version is visible,
//!    then announce it to the dependents.
//!
//! Tasks report events through a channel, so the caller's observer runs on
//! the caller's task and needs no `'static` bound.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use convoy_index_client::RegistryTarget;
use convoy_package::PackagedCrate;
use convoy_protocol::publish::encode_publish_body;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::client::{PutResult, RegistryClient, RemoteVersion};
use crate::error::{UploadError, describe};
use crate::pacing::{PaceKind, Pacer, SystemClock};
use crate::report::{CrateOutcome, CrateReport, UploadEvent, UploadReport};
use crate::{UploadOptions, retry};
use convoy_index_client::Fetch;

/// First pause between visibility polls; it doubles up to
/// [`MAX_POLL_DELAY`]. The first poll is immediate, so a registry with
/// read-your-writes (Convoy's own) costs one request.
const FIRST_POLL_DELAY: Duration = Duration::from_millis(200);
/// Longest pause between visibility polls.
const MAX_POLL_DELAY: Duration = Duration::from_secs(2);
/// Most jitter added to a server-given `Retry-After`.
const RETRY_AFTER_JITTER: Duration = Duration::from_millis(250);

/// What dependents see of a crate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not settled yet.
    Pending,
    /// In the index (or, in a dry run, would be): dependents may go.
    Visible,
    /// Failed or blocked; the root failures.
    Failed(Vec<String>),
}

/// Shared by every task of one run.
struct Ctx {
    client: RegistryClient,
    opts: UploadOptions,
    pacer: Option<Pacer>,
    upload_slots: Semaphore,
    index_slots: Semaphore,
    states: Vec<watch::Sender<State>>,
    names: Vec<String>,
    events: mpsc::UnboundedSender<UploadEvent>,
}

impl Ctx {
    fn emit(&self, event: UploadEvent) {
        // The receiver lives until every task has ended.
        let _ = self.events.send(event);
    }
}

/// Where a crate ended, with the counts the report wants.
struct Ended {
    outcome: CrateOutcome,
    attempts: u32,
    warnings: Vec<String>,
}

impl Ended {
    fn new(outcome: CrateOutcome) -> Self {
        Self {
            outcome,
            attempts: 0,
            warnings: Vec::new(),
        }
    }

    fn failed(err: &UploadError) -> Self {
        Self::new(CrateOutcome::Failed {
            reason: describe(err),
        })
    }
}

/// Marks a crate failed if its task ends without settling it (a panic), so
/// that dependents never wait forever.
struct SettleGuard {
    ctx: Arc<Ctx>,
    index: usize,
}

impl Drop for SettleGuard {
    fn drop(&mut self) {
        let name = self.ctx.names[self.index].clone();
        self.ctx.states[self.index].send_if_modified(|s| {
            if *s == State::Pending {
                *s = State::Failed(vec![name]);
                true
            } else {
                false
            }
        });
    }
}

/// See [`crate::upload`].
pub(crate) async fn run(
    target: &RegistryTarget,
    crates: &[PackagedCrate],
    opts: &UploadOptions,
    observer: &(dyn Fn(UploadEvent) + Send + Sync),
) -> UploadReport {
    let registry = target.label().to_owned();
    let mut ended: Vec<Option<Ended>> = crates.iter().map(|_| None).collect();

    // The graph, by position. Dependencies outside the job are assumed to
    // be on the registry already; the registry itself checks that.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, krate) in crates.iter().enumerate() {
        if by_name.contains_key(krate.name.as_str()) {
            ended[i] = Some(Ended::failed(&UploadError::Duplicate {
                name: krate.name.clone(),
            }));
        } else {
            by_name.insert(&krate.name, i);
        }
    }
    let deps: Vec<Vec<usize>> = crates
        .iter()
        .enumerate()
        .map(|(i, krate)| {
            let mut deps: Vec<usize> = krate
                .local_deps
                .iter()
                .filter_map(|d| by_name.get(d.as_str()).copied())
                .filter(|&d| d != i)
                .collect();
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect();
    for (i, reason) in unordered(crates, &deps) {
        ended[i].get_or_insert(Ended::failed(&reason));
    }

    let client = match RegistryClient::connect(target, opts.max_retries, opts.retry_backoff).await {
        Ok(client) => Some(client),
        Err(e) => {
            fail_rest(&mut ended, &e);
            None
        }
    };
    if let Some(client) = &client
        && !opts.dry_run
        && let Err(e) = client.check_can_publish()
    {
        fail_rest(&mut ended, &e);
    }

    if let Some(client) = client.filter(|_| ended.iter().any(Option::is_none)) {
        run_tasks(client, crates, &deps, opts, observer, &mut ended, target).await;
    } else {
        for (krate, end) in crates.iter().zip(&ended) {
            if let Some(Ended {
                outcome: CrateOutcome::Failed { reason },
                ..
            }) = end
            {
                observer(UploadEvent::Failed {
                    name: krate.name.clone(),
                    version: krate.version.clone(),
                    reason: reason.clone(),
                });
            }
        }
    }

    let crates = crates
        .iter()
        .zip(ended)
        .map(|(krate, end)| {
            let end = end.unwrap_or_else(|| {
                Ended::failed(&UploadError::Internal {
                    name: krate.name.clone(),
                    detail: "its task ended without a result".to_owned(),
                })
            });
            CrateReport {
                name: krate.name.clone(),
                version: krate.version.clone(),
                cksum: krate.cksum.clone(),
                outcome: end.outcome,
                attempts: end.attempts,
                warnings: end.warnings,
            }
        })
        .collect();
    UploadReport {
        registry,
        dry_run: opts.dry_run,
        crates,
    }
}

/// Crates no order can reach: part of, or behind, a dependency cycle.
fn unordered(crates: &[PackagedCrate], deps: &[Vec<usize>]) -> Vec<(usize, UploadError)> {
    let mut missing: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..deps.len()).filter(|&i| missing[i] == 0).collect();
    let mut done = vec![false; deps.len()];
    while let Some(i) = ready.pop() {
        done[i] = true;
        for &j in &dependents[i] {
            missing[j] -= 1;
            if missing[j] == 0 {
                ready.push(j);
            }
        }
    }
    let left: Vec<usize> = (0..deps.len()).filter(|&i| !done[i]).collect();
    let cycle = left
        .iter()
        .map(|&i| format!("`{}`", crates[i].name))
        .collect::<Vec<_>>()
        .join(", ");
    left.into_iter()
        .map(|i| {
            (
                i,
                UploadError::Cycle {
                    name: crates[i].name.clone(),
                    cycle: cycle.clone(),
                },
            )
        })
        .collect()
}

fn fail_rest(ended: &mut [Option<Ended>], err: &UploadError) {
    for end in ended.iter_mut().filter(|e| e.is_none()) {
        *end = Some(Ended::failed(err));
    }
}

async fn run_tasks(
    client: RegistryClient,
    crates: &[PackagedCrate],
    deps: &[Vec<usize>],
    opts: &UploadOptions,
    observer: &(dyn Fn(UploadEvent) + Send + Sync),
    ended: &mut [Option<Ended>],
    target: &RegistryTarget,
) {
    // Semaphores refuse absurd sizes; no registry wants more anyway.
    let jobs = opts.jobs.clamp(1, 1024);
    let (events, mut received) = mpsc::unbounded_channel();
    let states: Vec<watch::Sender<State>> = ended
        .iter()
        .map(|end| {
            let state = match end {
                None => State::Pending,
                Some(_) => State::Failed(Vec::new()),
            };
            watch::Sender::new(state)
        })
        .collect();
    // Crates failed before starting are the root of their own failure.
    for (i, krate) in crates.iter().enumerate() {
        if let Some(Ended {
            outcome: CrateOutcome::Failed { reason },
            ..
        }) = &ended[i]
        {
            states[i].send_replace(State::Failed(vec![krate.name.clone()]));
            observer(UploadEvent::Failed {
                name: krate.name.clone(),
                version: krate.version.clone(),
                reason: reason.clone(),
            });
        }
    }
    let ctx = Arc::new(Ctx {
        client,
        opts: opts.clone(),
        pacer: opts
            .pacing
            .limits_for(target.is_crates_io())
            .map(|limits| Pacer::new(limits, Box::new(SystemClock))),
        upload_slots: Semaphore::new(jobs),
        index_slots: Semaphore::new(jobs.saturating_mul(2).max(4)),
        states,
        names: crates.iter().map(|c| c.name.clone()).collect(),
        events,
    });

    let mut tasks = JoinSet::new();
    for (i, krate) in crates.iter().enumerate() {
        if ended[i].is_none() {
            let task = run_one(Arc::clone(&ctx), i, krate.clone(), deps[i].clone());
            tasks.spawn(task);
        }
    }
    // The channel closes once every task (each holding the context) ended.
    drop(ctx);
    while let Some(event) = received.recv().await {
        observer(event);
    }
    while let Some(joined) = tasks.join_next().await {
        // A panicked task is reported as an internal error by the caller.
        if let Ok((i, end)) = joined {
            ended[i] = Some(end);
        }
    }
}

async fn run_one(
    ctx: Arc<Ctx>,
    index: usize,
    krate: PackagedCrate,
    deps: Vec<usize>,
) -> (usize, Ended) {
    let _guard = SettleGuard {
        ctx: Arc::clone(&ctx),
        index,
    };
    let end = process(&ctx, &krate, &deps).await;
    let (name, version) = (krate.name.clone(), krate.version.clone());
    let (state, event) = match &end.outcome {
        CrateOutcome::Published => (State::Visible, UploadEvent::Published { name, version }),
        CrateOutcome::Skipped => (State::Visible, UploadEvent::Skipped { name, version }),
        CrateOutcome::DryRun => (State::Visible, UploadEvent::DryRun { name, version }),
        CrateOutcome::Failed { reason } => (
            State::Failed(vec![name.clone()]),
            UploadEvent::Failed {
                name,
                version,
                reason: reason.clone(),
            },
        ),
        CrateOutcome::Blocked { by } => (
            State::Failed(by.clone()),
            UploadEvent::Blocked {
                name,
                version,
                by: by.clone(),
            },
        ),
    };
    ctx.states[index].send_replace(state);
    ctx.emit(event);
    (index, end)
}

async fn process(ctx: &Ctx, krate: &PackagedCrate, deps: &[usize]) -> Ended {
    let opts = &ctx.opts;
    let mismatch = |remote: String| UploadError::ContentMismatch {
        name: krate.name.clone(),
        version: krate.version.clone(),
        registry: ctx.client.label.clone(),
        remote,
        local: krate.cksum.clone(),
    };

    // 1. Is it there already?
    let remote = {
        let _slot = ctx.index_slots.acquire().await;
        ctx.client
            .lookup(&krate.name, &krate.version, Fetch::Retrying)
            .await
    };
    let kind = match remote {
        Err(source) => {
            return Ended::failed(&UploadError::Index {
                name: krate.name.clone(),
                registry: ctx.client.label.clone(),
                source,
            });
        }
        Ok(RemoteVersion::Present { cksum }) if cksum.eq_ignore_ascii_case(&krate.cksum) => {
            return Ended::new(CrateOutcome::Skipped);
        }
        Ok(RemoteVersion::Present { cksum }) => return Ended::failed(&mismatch(cksum)),
        Ok(RemoteVersion::NoCrate) => PaceKind::NewCrate,
        Ok(RemoteVersion::OtherVersions) => PaceKind::NewVersion,
    };

    // 2. Wait for the local dependencies to be visible.
    let mut by = BTreeSet::new();
    for &d in deps {
        let mut rx = ctx.states[d].subscribe();
        let settled = rx
            .wait_for(|s| *s != State::Pending)
            .await
            .map(|s| s.clone());
        match settled {
            Ok(State::Visible) => {}
            Ok(State::Failed(roots)) => by.extend(roots),
            Ok(State::Pending) | Err(_) => {
                by.insert(ctx.names[d].clone());
            }
        }
    }
    if !by.is_empty() {
        return Ended::new(CrateOutcome::Blocked {
            by: by.into_iter().collect(),
        });
    }

    // 3. A dry run stops before the bytes are even read.
    if opts.dry_run {
        return Ended::new(CrateOutcome::DryRun);
    }

    // 4. Upload the bytes that were verified.
    let body = match publish_body(krate).await {
        Ok(body) => body,
        Err(e) => return Ended::failed(&e),
    };
    if let Some(pacer) = &ctx.pacer {
        let wait = pacer.reserve(kind);
        if !wait.is_zero() {
            ctx.emit(UploadEvent::Paced {
                name: krate.name.clone(),
                version: krate.version.clone(),
                wait,
            });
            tokio::time::sleep(wait).await;
        }
    }
    let (attempts, warnings) = match put_with_retries(ctx, krate, body).await {
        Ok(done) => done,
        Err((attempts, e)) => {
            return Ended {
                attempts,
                ..Ended::failed(&e)
            };
        }
    };

    // 5. Visible before dependents go.
    ctx.emit(UploadEvent::Waiting {
        name: krate.name.clone(),
        version: krate.version.clone(),
    });
    let outcome = match poll_visible(ctx, krate, opts.visibility_timeout).await {
        Ok(true) => CrateOutcome::Published,
        Ok(false) => CrateOutcome::Failed {
            reason: describe(&UploadError::NotVisible {
                name: krate.name.clone(),
                version: krate.version.clone(),
                registry: ctx.client.label.clone(),
                timeout: opts.visibility_timeout,
            }),
        },
        Err(remote) => CrateOutcome::Failed {
            reason: describe(&mismatch(remote)),
        },
    };
    Ended {
        outcome,
        attempts,
        warnings,
    }
}

/// Reads the `.crate`, checks it is still the packaged one, and frames it
/// with the metadata as cargo does.
async fn publish_body(krate: &PackagedCrate) -> Result<Bytes, UploadError> {
    let tarball = tokio::fs::read(&krate.path)
        .await
        .map_err(|source| UploadError::ReadCrate {
            path: krate.path.clone(),
            source,
        })?;
    let actual = hex::encode(Sha256::digest(&tarball));
    if !actual.eq_ignore_ascii_case(&krate.cksum) {
        return Err(UploadError::CrateChanged {
            path: krate.path.clone(),
            actual,
            expected: krate.cksum.clone(),
        });
    }
    let metadata = serde_json::to_vec(&krate.metadata).map_err(|source| UploadError::Metadata {
        name: krate.name.clone(),
        version: krate.version.clone(),
        source,
    })?;
    Ok(Bytes::from(encode_publish_body(&metadata, &tarball)))
}

/// The `PUT` and its retries. Returns the attempts made and the registry's
/// warnings, or the attempts and the final error.
async fn put_with_retries(
    ctx: &Ctx,
    krate: &PackagedCrate,
    body: Bytes,
) -> Result<(u32, Vec<String>), (u32, UploadError)> {
    let opts = &ctx.opts;
    let registry = || ctx.client.label.clone();
    let mut attempts = 0u32;
    let mut transient_failures = 0u32;
    let mut rate_limited_for = Duration::ZERO;
    // Set once an attempt may have landed without us hearing so.
    let mut ambiguous = false;
    loop {
        attempts += 1;
        ctx.emit(UploadEvent::Uploading {
            name: krate.name.clone(),
            version: krate.version.clone(),
            attempt: attempts,
        });
        let result = {
            let _slot = ctx.upload_slots.acquire().await;
            ctx.client.put(body.clone(), opts.request_timeout).await
        };
        let (reason, wait) = match result {
            PutResult::Accepted { warnings } => {
                ctx.emit(UploadEvent::Uploaded {
                    name: krate.name.clone(),
                    version: krate.version.clone(),
                    warnings: warnings.clone(),
                });
                return Ok((attempts, warnings));
            }
            PutResult::RateLimited { after, detail } => {
                let wait = after
                    .unwrap_or_else(|| {
                        retry::backoff(opts.retry_backoff, opts.max_backoff, attempts)
                    })
                    .saturating_add(retry::jitter(RETRY_AFTER_JITTER));
                if rate_limited_for.saturating_add(wait) > opts.max_rate_limit_wait {
                    return Err((
                        attempts,
                        UploadError::RateLimited {
                            name: krate.name.clone(),
                            version: krate.version.clone(),
                            registry: registry(),
                            after: wait,
                            detail,
                        },
                    ));
                }
                rate_limited_for += wait;
                (format!("rate limited, {detail}"), wait)
            }
            PutResult::Transient { reason } => {
                ambiguous = true;
                // A timeout or a 5xx may hide a success: never send the
                // same version twice when the index already has it.
                match ctx
                    .client
                    .lookup(&krate.name, &krate.version, Fetch::Once)
                    .await
                {
                    Ok(RemoteVersion::Present { cksum })
                        if cksum.eq_ignore_ascii_case(&krate.cksum) =>
                    {
                        ctx.emit(UploadEvent::Uploaded {
                            name: krate.name.clone(),
                            version: krate.version.clone(),
                            warnings: Vec::new(),
                        });
                        return Ok((attempts, Vec::new()));
                    }
                    Ok(RemoteVersion::Present { cksum }) => {
                        return Err((
                            attempts,
                            UploadError::ContentMismatch {
                                name: krate.name.clone(),
                                version: krate.version.clone(),
                                registry: registry(),
                                remote: cksum,
                                local: krate.cksum.clone(),
                            },
                        ));
                    }
                    _ => {}
                }
                transient_failures += 1;
                if transient_failures > opts.max_retries {
                    return Err((
                        attempts,
                        UploadError::GaveUp {
                            name: krate.name.clone(),
                            version: krate.version.clone(),
                            registry: registry(),
                            attempts,
                            last: reason,
                        },
                    ));
                }
                let wait = retry::backoff(opts.retry_backoff, opts.max_backoff, transient_failures);
                (reason, wait)
            }
            PutResult::Rejected { status, detail } => {
                // "Already uploaded" after an attempt that may have landed,
                // or another publisher with identical bytes: that is done.
                // An index that lags gets the visibility timeout to catch up.
                if !matches!(status, 401 | 403) {
                    let timeout = if ambiguous {
                        opts.visibility_timeout
                    } else {
                        Duration::ZERO
                    };
                    if let Ok(true) = poll_visible(ctx, krate, timeout).await {
                        return Ok((attempts, Vec::new()));
                    }
                }
                return Err((
                    attempts,
                    UploadError::Rejected {
                        name: krate.name.clone(),
                        version: krate.version.clone(),
                        registry: registry(),
                        status,
                        detail,
                    },
                ));
            }
        };
        ctx.emit(UploadEvent::Retrying {
            name: krate.name.clone(),
            version: krate.version.clone(),
            reason,
            after: wait,
        });
        tokio::time::sleep(wait).await;
    }
}

/// Polls the index until `krate` shows up with its cksum (`Ok(true)`), the
/// timeout passes (`Ok(false)`), or another cksum shows up (`Err(cksum)`).
/// Read errors count as "not yet". One poll is made even with a zero
/// timeout.
async fn poll_visible(ctx: &Ctx, krate: &PackagedCrate, timeout: Duration) -> Result<bool, String> {
    let start = Instant::now();
    let deadline = start
        .checked_add(timeout)
        .unwrap_or(start + MAX_POLL_DELAY * 86_400);
    let mut delay = FIRST_POLL_DELAY;
    loop {
        let found = {
            let _slot = ctx.index_slots.acquire().await;
            ctx.client
                .lookup(&krate.name, &krate.version, Fetch::Once)
                .await
        };
        if let Ok(RemoteVersion::Present { cksum }) = found {
            return if cksum.eq_ignore_ascii_case(&krate.cksum) {
                Ok(true)
            } else {
                Err(cksum)
            };
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(MAX_POLL_DELAY);
    }
}
