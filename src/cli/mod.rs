//! The command-line front end: argument definitions, dispatch, printing and exit codes.
//! The library below this module never prints.

mod formats;
mod gate;
mod ingest;
mod page;
mod query;
mod read;
mod remote;
mod report;
mod serve;
mod witness;
mod write;

pub use gate::{Clock, LedgerChanges, SystemClock, watch_with};

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::entry::Payload;
use crate::error::{Error, exit};
use crate::keys::{self, SecretKey};
use crate::store::{Appended, Draft, Ledger, OpenOptions};
use crate::timestamp::Timestamp;

const AFTER_HELP: &str = "\
EXIT CODES:
    0  success; for verify, replay and verify-bundle: verified
    1  verification failed: the ledger, bundle or disposition is invalid or tampered, or
       no trust root anchors it (verify-bundle); for gate test: a case failed
    2  usage or input error: bad arguments, malformed or missing files, unknown digests
    3  refused: signer unknown, revoked or lacking the role; secret key file readable by others;
       auditor state writable by others
    4  the ledger is in use by another process appending to it (retry, or pass --wait);
       reading verbs never wait
    5  storage failure: disk full, file-size limit reached, or ledger not writable
    6  checkpoint --witness / --witness-policy: fewer cosignatures than the quorum; nothing stored
    10 evaluate --fail-on: the verdict is HOLD and hold is listed
    11 evaluate --fail-on: the verdict is NARROW and narrow is listed
    12 evaluate --fail-on: the verdict is ESCALATE and escalate is listed

ENVIRONMENT:
    EVL_LEDGER  ledger directory (default ./.evl); --ledger overrides it
    EVL_KEY     secret key file for verbs that sign; --key overrides it
    SSH_AUTH_SOCK  the ssh-agent socket a --key ssh-agent:COMMENT signs through
    EVL_STATE_DIR  auditor state directory of verify and verify-bundle (default
                $XDG_STATE_HOME/evl, i.e. ~/.local/state/evl); --state-dir overrides it
    EVL_CA_FILE  PEM certificates trusted beside the system's roots by verbs that speak
                HTTPS (--ledger https://, s3://, submit, checkpoint --witness); docs/SERVER.md

EXAMPLE:
    evl keygen hana --dir keys
    evl init --origin example.org/mesh-gate --admin keys/hana.pub --key keys/hana.key
    evl add inventory.csv --kind workload-inventory --tier authoritative --key keys/hana.key
    evl log
    evl verify";

/// evl — an append-only, signed evidence ledger for readiness gates.
///
/// Every evidence artifact, annotation and acknowledgment is stored as a BLAKE3-addressed,
/// Ed25519-signed entry that is never rewritten. The log is an RFC 6962 Merkle tree with
/// signed C2SP checkpoints, so anyone can verify it, prove an entry's inclusion, or prove an
/// old checkpoint is consistent with today's ledger.
#[derive(Parser, Debug)]
#[command(name = "evl", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every verb takes. `--ledger` and `--wait` are accepted before the verb and after
/// it, but are not clap `global` options: clap copies a global option into every verb's
/// definition at each start (two large clones per verb, a tenth of `evl --version`), so each
/// verb gets them when it is the one run ([`ledger_options`]) and [`parse`] takes the value
/// given after the verb.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Ledger directory (docs/FORMAT.md §"Store layout").
    #[arg(long, env = "EVL_LEDGER", default_value = ".evl", value_name = "DIR")]
    pub ledger: PathBuf,
    /// If another process is appending to the ledger, wait up to SECS seconds for it instead of failing (reading verbs never wait).
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "60")]
    pub wait: Option<u64>,
    /// Settings of an S3 `--ledger` or `publish --to` (docs/PUBLISH.md).
    #[command(flatten)]
    pub s3: remote::S3Args,
    /// The ledger once a verb has opened it, so its helpers share one handle.
    #[arg(skip)]
    opened: Opened,
}

/// The ledger a verb opened (see [`open`]).
#[derive(Clone, Default)]
struct Opened(std::sync::OnceLock<&'static Ledger>);

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Opened(open)"
        } else {
            "Opened(closed)"
        })
    }
}

/// Options of verbs that sign an entry.
#[derive(Args, Debug, Clone)]
pub struct Signing {
    /// Secret key to sign with: PKCS#8 PEM or OpenSSH ed25519, mode 0600; or `ssh-agent:COMMENT` for an ed25519 key ssh-agent holds (found through SSH_AUTH_SOCK by its comment or SHA256 fingerprint; the secret never leaves the agent).
    #[arg(long, env = "EVL_KEY", value_name = "FILE|ssh-agent:COMMENT")]
    pub key: PathBuf,
    /// The time the signer claims (RFC 3339 or YYYY-MM-DD); default: now. At most 5 minutes ahead of this machine's clock.
    #[arg(long, value_name = "TIME")]
    pub at: Option<Timestamp>,
    /// Print what was appended as JSON ("schema": "evl.appended/v1"; docs/CLI-JSON.md).
    #[arg(long)]
    pub json: bool,
}

impl Signing {
    fn load(&self) -> Result<SecretKey, Error> {
        Ok(keys::read_secret(&self.key)?)
    }
    fn time(&self) -> Timestamp {
        self.at.unwrap_or_else(Timestamp::now)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an Ed25519 key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub.
    ///
    /// The secret key is never printed. Keys from `openssl genpkey -algorithm ed25519` and
    /// unencrypted OpenSSH ed25519 keys work too, wherever evl takes --key.
    Keygen(NoLedger<write::KeygenArgs>),
    /// Create a ledger whose genesis entry names its origin and trust-root admin keys.
    Init(Lazy<write::InitArgs>),
    /// Manage the key registry: add, rotate, revoke, list (each change a signed admin entry).
    #[command(subcommand)]
    Key(Lazy<write::KeyCommand>),
    /// Add evidence files as artifacts, all in one durable batch.
    #[command(
        after_help = "EXAMPLE:\n    evl add drills/*.toml --kind rollback-drill --tier authoritative \\\n        --namespace payments --captured-at 2026-04-10 --valid-until 2026-04-24 --key keys/hana-okafor.key"
    )]
    Add(Lazy<write::AddArgs>),
    /// Annotate any digest: note, concern, blocker, accept or reject.
    #[command(
        after_help = "EXAMPLE:\n    evl annotate 3f2a9c --kind concern --workload payments/payments-ledger-sync \\\n        --text 'sidecar compatibility unresolved' --key keys/reviewer-platform-security.key"
    )]
    Annotate(Lazy<write::AnnotateArgs>),
    /// Sign an acknowledgment, e.g. of an east-west policy for a namespace.
    #[command(
        after_help = "EXAMPLE:\n    evl ack --topic east-west-authorization-policy --subject 7d1e --namespace data-platform \\\n        --statement 'east-west authorization policy acknowledged' --key keys/ns-data-platform-owner.key"
    )]
    Ack(Lazy<write::AckArgs>),
    /// Promote an excluded-tier artifact into use (owner role).
    Promote(Lazy<write::PromoteArgs>),
    /// Import evidence as it arrives: certificates, mesh policies, inventories, telemetry.
    ///
    /// The original bytes are stored as the artifact and the parsed facts beside them, with
    /// the parser's version, so replay can re-parse and prove the same facts. Parsing is strict:
    /// a malformed file names file, line and field and nothing is appended.
    ///
    /// For mesh policy, a single --namespace also acts as `kubectl apply --namespace`: objects
    /// without metadata.namespace are placed there and an object in another namespace is
    /// refused. The parse options (window, label mapping, namespace, invalid-policy handling)
    /// are recorded in the entry so every later re-parse reads the file the same way.
    #[command(
        after_help = "EXIT CODES:\n    0  every file parsed and was appended\n    2  a file is refused (one line names the file, line and field) or an option is wrong;\n       nothing is appended\n    3, 4, 5  as for every appending verb (evl --help)\n\nEXAMPLE:\n    evl ingest inventory mesh-enforcement-targets-2026-04-18.csv --key keys/hana-okafor.key\n    evl ingest telemetry canary.json --window mesh-mtls-canary-2026-04-11T00Z-2026-04-13T00Z --sealed --key keys/hana-okafor.key\n    evl ingest telemetry p95.json --window canary --profile istio --metric p95_ms --key keys/hana-okafor.key\n    evl ingest mesh payments-policies.yaml --namespace payments --key keys/hana-okafor.key   # as kubectl apply -n payments\n    evl ingest mesh cluster-dump.yaml --invalid-policies record --key keys/hana-okafor.key\n    evl ingest cert chain.pem --valid-until 2026-06-01 --key keys/hana-okafor.key\n\nFormats, facts and the upstream rules they follow: docs/IMPORTERS.md."
    )]
    Ingest(Lazy<ingest::IngestArgs>),
    /// Show one entry or artifact by digest or unique prefix.
    #[command(
        after_help = "EXAMPLE:\n    evl show 3f2a9c\n    evl show 3f2a9c --json | jq .body.payload.artifact.valid_until"
    )]
    Show(Lazy<read::ShowArgs>),
    /// List entries in log order.
    #[command(
        after_help = "EXAMPLE:\n    evl log --kind acknowledgment\n    evl log --since 100 --json"
    )]
    Log(Lazy<read::LogArgs>),
    /// Write an artifact's original bytes to stdout.
    Cat(Lazy<read::CatArgs>),
    /// Print inclusion or consistency proofs (RFC 9162).
    #[command(subcommand)]
    Proof(Lazy<read::ProofCommand>),
    /// Sign a C2SP checkpoint of the current tree with an admin key.
    #[command(
        after_help = "The note verifies with any C2SP signed-note implementation (e.g. Go's\ngolang.org/x/mod/sumdb/note) using the verifier key `--json` prints. Format: docs/FORMAT.md.\nWith --witness or --witness-policy, C2SP tlog-witnesses cosign it first (docs/WITNESS.md).\n\nEXIT CODES:\n    0  signed (and cosigned to the quorum) and stored\n    2  bad arguments, unreadable files, a malformed witness policy\n    3  the key is not an active admin key, or its file is readable by others\n    4, 5  as for every appending verb (evl --help)\n    6  fewer witnesses cosigned than the quorum: one line names how many and why; nothing stored\n\nEXAMPLE:\n    evl checkpoint --key keys/mesh-admin.key -o audit-2026-04-20.note\n    evl checkpoint --key keys/mesh-admin.key --witness http://w1:7380 --witness http://w2:7380 --quorum 2\n    evl checkpoint --key keys/mesh-admin.key --witness-policy witnesses.policy"
    )]
    Checkpoint(Lazy<read::CheckpointArgs>),
    /// Pin a packet revision: gate definition, checkpoint time, in-scope workloads, basis.
    ///
    /// With --parent, everything not given is inherited from the parent revision, and --basis
    /// / --drop edit the inherited basis.
    #[command(subcommand)]
    Packet(PacketCommand),
    /// Propose narrowing a packet to the workloads it keeps; reviewers accept or reject it
    /// with `evl annotate PROPOSAL --kind accept|reject`.
    Narrow(Lazy<gate::NarrowArgs>),
    /// Derive the disposition of a packet revision: verdict, blockers, exact scope.
    ///
    /// A pure function of the pinned basis, the pinned gate definition, --as-of and the engine
    /// version: the same inputs give byte-identical output on any machine. --record appends it
    /// (refused, naming the existing entry, when the same derivation is already recorded).
    /// Exit 0 whatever the verdict, unless --fail-on lists it: then 10 HOLD, 11 NARROW,
    /// 12 ESCALATE (after printing everything), so a CI step fails on the exit code alone.
    #[command(
        after_help = "EXAMPLE:\n    evl evaluate 9c41 --as-of 2026-04-20T00:00:00Z\n    evl evaluate 9c41 --as-of 2026-04-20T00:00:00Z --record --key keys/hana-okafor.key\n    evl evaluate 9c41 --as-of 2026-04-20T00:00:00Z --json > disposition.json\n    evl evaluate 9c41 --fail-on hold,escalate --format sarif > evl.sarif   # CI: exit 10/12 fails the job"
    )]
    Evaluate(Lazy<gate::EvaluateArgs>),
    /// Check gate definitions and run gate test cases, with no ledger.
    #[command(subcommand)]
    Gate(Lazy<gate::GateCommand>),
    /// Check that files parse as an evidence kind evl reads, with no ledger.
    ///
    /// Exit 0 when every file parses; 2 naming the file, line and field of the first problem.
    #[command(
        after_help = "EXAMPLE:\n    evl check rollback-drill examples/mtls-cutover/drill-*.toml\n    evl check workload-inventory examples/mtls-cutover/mesh-enforcement-targets-2026-04-18.csv"
    )]
    Check(NoLedger<gate::CheckArgs>),
    /// Re-derive a recorded disposition from its basis and prove it matches byte for byte.
    ///
    /// Exit 0 when it matches; 1 with a field-by-field difference, a missing basis digest or
    /// an engine version change named.
    Replay(Lazy<gate::ReplayArgs>),
    /// Walk a packet's revisions: dispositions, evidence deltas, what changed the verdict.
    Lineage(Lazy<gate::PacketArg>),
    /// List the future times at which the derived result would change, and to what.
    Deadlines(Lazy<gate::DeadlinesArgs>),
    /// Re-evaluate when the ledger changes or a deadline passes; record only changed results.
    Watch(Lazy<gate::WatchArgs>),
    /// Export a self-contained bundle: lineage, basis, artifacts, dispositions, proofs, checkpoint.
    Export(Lazy<gate::ExportArgs>),
    /// Export a recorded disposition as an in-toto attestation in a DSSE envelope.
    ///
    /// An in-toto Statement v1 about the packet revision, its predicate shaped like SLSA's
    /// Verification Summary Attestation v1 (verifier = evl and the engine version, time = the
    /// disposition's as-of, resource = the packet, policy = the gate definition's digest,
    /// inputs = the basis, PASSED only for PROCEED) plus evl's verdict, blockers and scope;
    /// sha256 beside blake3 in every digest set. Signed with --key (DSSE, Ed25519, keyid = the
    /// evl key id). The same disposition and key always give the same bytes. Nothing is
    /// appended. Exit 0 written; 2 not a disposition, unknown id, or unreadable key; 3 key file
    /// readable by others. Format: docs/ATTESTATIONS.md.
    #[command(
        after_help = "EXAMPLE:\n    evl export-attestation 7c1e --key keys/hana-okafor.key -o packet-v4.intoto.jsonl"
    )]
    ExportAttestation(Lazy<formats::ExportAttestationArgs>),
    /// Verify a bundle offline, with no ledger, replaying every disposition in it.
    ///
    /// A bundle carries its own keys, so it proves nothing about whose ledger it is: it
    /// verifies only from a trust root you already hold — --genesis, --admin-key,
    /// --verifier-key, a --checkpoint of the same size, or the auditor state recorded for its
    /// origin by an earlier verification. Without one it is refused; --trust-on-first-use
    /// accepts what it carries, with a loud warning, and records it. Every verification prints
    /// what it trusted. Exit 0 when it verifies, 1 when it does not (or no root was given).
    #[command(
        after_help = "AUDITOR STATE:\n    One file per origin in $XDG_STATE_HOME/evl (default ~/.local/state/evl; --state-dir or\n    EVL_STATE_DIR to move it, --no-state to ignore it): the genesis and the newest tree verified.\n    A bundle of the recorded size must have the recorded root; one of another size cannot be\n    proven consistent from a bundle alone, and the output says so. Format: docs/FORMAT.md.\n\nEXAMPLE:\n    evl verify-bundle packet-v4.evlb --genesis 892a10bdd0e46a23dcfd1f77cffe4070ab6036836f59081ec216d8d1c4bdcb83\n    evl verify-bundle packet-v4.evlb --admin-key keys/mesh-admin.pub\n    evl verify-bundle packet-v4.evlb --verifier-key 'example.org/mesh-gate+5c8409be+AcPl…'\n    evl verify-bundle packet-v5.evlb            # the origin's genesis is in the auditor state"
    )]
    VerifyBundle(NoLedger<read::VerifyBundleArgs>),
    /// Write the gate-board page of a packet revision: DIR/index.html, one offline HTML file.
    ///
    /// The page shows the verdict in one line, the blockers by subject with their evidence and
    /// what would clear each, the in/out-of-scope split, the revision lineage, an evidence
    /// timeline with the deadlines, and how to replay each disposition (docs/REPORT.md). It
    /// has no script and fetches nothing; ledger text is escaped. The same ledger and as-of
    /// give the same bytes. An existing DIR/index.html is overwritten only if evl report
    /// wrote it.
    #[command(
        after_help = "EXIT CODES:\n    0  the page was written\n    1  the ledger is damaged: an entry or artifact bytes the packet needs are missing or\n       do not match their digest\n    2  unknown packet, not a packet, no --as-of and no recorded disposition to take it from,\n       -o names a file, or DIR/index.html exists and is not a page evl report wrote\n    5  the page cannot be written (disk full, not writable)\n\nEXAMPLE:\n    evl report dc0b16 -o gate-board/            # as of the latest recorded disposition\n    evl report dc0b16 --as-of 2026-04-20T00:00:00Z -o gate-board/"
    )]
    Report(Lazy<page::ReportArgs>),
    /// Record the gate chair's human decision on a packet (gate-chair role).
    Decide(Lazy<gate::DecideArgs>),
    /// Copy a ledger kept by evl 0.1 (store layout 1, sled) into the current layout.
    ///
    /// Every entry is appended again with its stored bytes, so each signature and each key's
    /// authority at its position is checked anew; the latest checkpoint is carried over.
    /// Entries keep their bytes: ids, the tree root, proofs and checkpoints stay valid. The
    /// old directory is not changed; the new one (--ledger) appears only once complete.
    #[command(
        after_help = "EXAMPLE:\n    evl migrate --from .evl-0.1 --ledger .evl\n    evl verify"
    )]
    Migrate(Lazy<write::MigrateArgs>),
    /// Verify every entry, signature, artifact, index, tree hash and checkpoint.
    ///
    /// Prints what it trusted (origin, genesis, admin keys, checkpoint) and why: the roots
    /// given (--genesis, --admin-key, --verifier-key, --checkpoint), the auditor state, or —
    /// the first time an origin is verified with none — trust on first use. The auditor state
    /// remembers the newest tree verified per origin: a later verification of a ledger with
    /// another genesis, fewer entries (rolled back) or another root at that size (a fork)
    /// fails. Exit 0 when everything verifies, 1 naming every failure otherwise.
    #[command(
        after_help = "AUDITOR STATE:\n    One file per origin in $XDG_STATE_HOME/evl (default ~/.local/state/evl; --state-dir or\n    EVL_STATE_DIR to move it, --no-state to ignore it). Format: docs/FORMAT.md.\n\nEXAMPLE:\n    evl verify\n    evl verify --checkpoint audit-2026-04-20.note   # prove nothing kept since was rewritten\n    evl verify --genesis 892a10bdd0e46a23dcfd1f77cffe4070ab6036836f59081ec216d8d1c4bdcb83   # a copy from elsewhere\n    evl verify --no-state --ledger restored-backup/  # an older copy, on purpose\n    evl verify --witness-policy witnesses.policy   # exit 1 unless the checkpoint has its quorum (docs/WITNESS.md)"
    )]
    Verify(Lazy<read::VerifyArgs>),
    /// Run a C2SP tlog-witness that cosigns checkpoints of the logs it knows (docs/WITNESS.md).
    #[command(subcommand)]
    Witness(Lazy<witness::WitnessCommand>),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "EXAMPLE:\n    evl completions bash > ~/.local/share/bash-completion/completions/evl\n    evl completions zsh > ~/.zfunc/_evl"
    )]
    Completions(NoLedger<CompletionsArgs>),
    /// Write man pages (roff): evl.1 and one evl-VERB.1 per verb, into a directory.
    #[command(after_help = "EXAMPLE:\n    evl man --out /usr/local/share/man/man1 && man evl-log")]
    Man(NoLedger<ManArgs>),
    /// Append entries signed elsewhere (`--offline -o FILE`): the same checks as a local append.
    ///
    /// Every entry of every file is checked — its ledger (origin and genesis), signature,
    /// signer's role in the registry at its position, and what it refers to — and all are
    /// appended in one durable batch, or none is. An entry already in the log is not appended
    /// again: its index is printed and it counts as success. Exit 0 when every entry is in the
    /// log; 2 for a malformed file, one for another ledger or a dangling reference; 3 when a
    /// signer is unknown, revoked or lacks the role; 4, 5 as for every appending verb.
    #[command(
        after_help = "EXAMPLE:\n    evl ack --topic east-west-authorization-policy --namespace data-platform --statement 'acknowledged' \\\n        --key ~/.evl/me.key --offline --origin example.org/mesh-gate --genesis 892a10bd…cb83 -o ack.evls\n    evl submit ack.evls        # on the ledger's machine"
    )]
    Submit(Lazy<remote::SubmitArgs>),
    /// Publish the log as static C2SP tlog-tiles to a directory or S3-compatible storage.
    ///
    /// Writes what the destination lacks — hash tiles `tile/<L>/<N>[.p/<W>]`, entry bundles
    /// `tile/entries/<N>[.p/<W>]` and carried bytes `blob/<blake3-hex>`, each created only if
    /// absent (S3 `If-None-Match: *`) and never changed — then the signed `checkpoint` last.
    /// Anyone can then read and verify the log with `--ledger s3://BUCKET/PREFIX` (or the
    /// directory) and a trust root, with no server. Layout: docs/PUBLISH.md. Exit 0 when
    /// published; 2 when the destination holds another log's or a newer tree; 5 on storage
    /// failures.
    #[command(
        after_help = "EXAMPLE:\n    evl publish --to s3://audit-bucket/mesh-gate --key keys/mesh-admin.key\n    AWS_ENDPOINT_URL=http://127.0.0.1:8333 AWS_ALLOW_HTTP=true evl publish --to s3://b/p\n    evl verify --ledger s3://audit-bucket/mesh-gate --genesis 892a10bd…cb83"
    )]
    Publish(Lazy<remote::PublishArgs>),
    /// Serve the log over HTTP: C2SP tlog-tiles read-only, and submissions signed elsewhere.
    ///
    /// GET /checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>], /blob/<blake3-hex>
    /// (the layout of docs/PUBLISH.md, immutable objects cacheable forever); POST /add with a
    /// submission file (docs/FORMAT.md §"Submission files"): sequenced in batches, one durable
    /// write per batch, answered once durable with each entry's index and inclusion proof
    /// against a fresh checkpoint signed by --key. The entry's signature and the registry are
    /// the only authorization. Loopback by default; HTTPS with --tls-cert/--tls-key; every
    /// phase a client controls is time-bounded (--header-timeout, --body-timeout, ...) and
    /// open connections are capped; docs/SERVER.md. Runs until SIGINT or SIGTERM, then drains
    /// the requests in flight (exit 0).
    #[command(
        after_help = "EXIT CODES:\n    0  stopped by SIGINT or SIGTERM, requests in flight answered\n    2  an address that cannot be bound, an unusable log key, or a TLS certificate or key\n       that cannot be read or parsed or that do not match (checked before binding)\n    3  the log key or --tls-key file is readable by others\n\nEXAMPLE:\n    evl serve --addr 127.0.0.1:8740 --key keys/log.key\n    evl serve --addr 0.0.0.0:8740 --key keys/log.key --tls-cert fullchain.pem --tls-key privkey.pem\n    evl verify --ledger http://127.0.0.1:8740 --genesis 892a10bd…cb83\n    EVL_CA_FILE=ca.pem evl submit --ledger https://ledger.example.org:8740 ack.evls"
    )]
    Serve(Lazy<serve::ServeArgs>),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the names of the pages written as JSON ("schema": "evl.man/v1").
    #[arg(long)]
    pub json: bool,
}

fn completions(a: CompletionsArgs) -> Result<i32, Error> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "evl", &mut out);
    Ok(exit::OK)
}

fn man(a: ManArgs) -> Result<i32, Error> {
    std::fs::create_dir_all(&a.out).map_err(Error::io(&a.out))?;
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut written = Vec::new();
    fn pages(
        cmd: &clap::Command,
        name: String,
        dir: &std::path::Path,
        written: &mut Vec<String>,
    ) -> Result<(), Error> {
        if cmd.is_hide_set() || cmd.get_name() == "help" {
            return Ok(());
        }
        let file = dir.join(format!("{name}.1"));
        let page = cmd.clone().name(&*Box::leak(name.clone().into_boxed_str()));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut bytes)
            .map_err(Error::io(&file))?;
        std::fs::write(&file, bytes).map_err(Error::io(&file))?;
        written.push(file.display().to_string());
        for sub in cmd.get_subcommands() {
            pages(sub, format!("{name}-{}", sub.get_name()), dir, written)?;
        }
        Ok(())
    }
    pages(&cmd, "evl".into(), &a.out, &mut written)?;
    if a.json {
        return print_json_as("evl.man/v1", &serde_json::json!({"pages": written}));
    }
    for w in &written {
        println!("{w}");
    }
    Ok(exit::OK)
}

#[derive(Subcommand, Debug)]
pub enum PacketCommand {
    /// Create a packet revision (owner role).
    #[command(
        after_help = "EXAMPLE:\n    evl packet create --name Service-Mesh-mTLS-Enforcement-Gate-Packet --revision 2 \\\n        --gate 5be0 --checkpoint-at 2026-04-30 --workloads-from 77aa --basis 77aa --basis 1c3d --key keys/hana-okafor.key\n    evl packet create --parent 9c41 --basis 0e12 --drop 1c3d --key keys/hana-okafor.key   # next revision"
    )]
    Create(Lazy<gate::PacketCreateArgs>),
}

/// Parses the process's command line as `Cli::parse()` does: help, version and usage errors
/// (exit 2) end the process here. The command definition clap builds to parse is left for the
/// process's exit to free: dropping it frees its hundreds of small allocations one by one, which
/// is a sixth of the instructions a single `evl add` runs (docs/PERFORMANCE.md, "Start-up").
pub fn parse() -> Cli {
    // `packet`'s one sub-verb is Lazy; `packet` itself takes the options too, as before.
    let mut cmd = <Cli as clap::CommandFactory>::command().mut_subcommand("packet", ledger_options);
    let parsed = cmd
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|matches| {
            let ledger = given_after_verb::<PathBuf>(&matches, "ledger");
            let wait = given_after_verb::<u64>(&matches, "wait");
            let mut cli = Cli::from_arg_matches_mut(&mut std::mem::ManuallyDrop::new(matches))?;
            if let Some(l) = ledger {
                cli.global.ledger = l;
            }
            if wait.is_some() {
                cli.global.wait = wait;
            }
            Ok(cli)
        });
    match parsed {
        Ok(cli) => {
            std::mem::forget(cmd);
            cli
        }
        Err(e) => {
            let e = e.format(&mut cmd);
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                // --help, --version (stdout, exit 0) and a bare `evl` (the help, exit 2).
                e.exit()
            }
            // The verb the arguments name, for the hint: `evl key add`, `evl add`.
            let mut verb = vec!["evl".to_string()];
            let mut sub = &cmd;
            for arg in std::env::args_os().skip(1) {
                // (args_os: a file name need not be UTF-8, and must not make this panic)
                if let Some(arg) = arg.to_str()
                    && let Some(c) = sub.find_subcommand(arg)
                {
                    verb.push(arg.to_string());
                    sub = c;
                }
            }
            print_error(
                &one_line(&e.render().to_string(), &verb.join(" ")),
                exit::INPUT,
            );
            std::process::exit(exit::INPUT)
        }
    }
}

/// clap's multi-line error (`error: …`, indented details, a usage block and a hint) as the one
/// line every other evl error is: the message and its details, and where to read more.
fn one_line(rendered: &str, verb: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage: ") {
            break;
        }
        if !line.is_empty() && !line.starts_with("For more information") {
            parts.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    format!("{} (see '{verb} --help')", parts.join(" "))
}

/// Runs a parsed command line and returns the process exit code. Errors are printed here as
/// one line on stderr.
pub fn run(cli: Cli) -> i32 {
    if crate::publish::is_published(&cli.global.ledger) && appends(&cli.command) {
        eprintln!(
            "evl: {} is a published log, which only its ledger's host appends to; sign with --offline -o FILE and `evl submit FILE` there",
            cli.global.ledger.display()
        );
        return exit::INPUT;
    }
    let result = match cli.command {
        Command::Keygen(NoLedger(a)) => write::keygen(a),
        Command::Init(Lazy(a)) => write::init(&cli.global, a),
        Command::Key(Lazy(c)) => write::key(&cli.global, c),
        Command::Add(Lazy(a)) => write::add(&cli.global, a),
        Command::Annotate(Lazy(a)) => write::annotate(&cli.global, a),
        Command::Ack(Lazy(a)) => write::ack(&cli.global, a),
        Command::Promote(Lazy(a)) => write::promote(&cli.global, a),
        Command::Ingest(Lazy(a)) => ingest::ingest(&cli.global, a),
        Command::Show(Lazy(a)) => read::show(&cli.global, a),
        Command::Log(Lazy(a)) => read::log(&cli.global, a),
        Command::Cat(Lazy(a)) => read::cat(&cli.global, a),
        Command::Proof(Lazy(c)) => read::proof(&cli.global, c),
        Command::Checkpoint(Lazy(a)) => read::checkpoint(&cli.global, a),
        Command::Packet(PacketCommand::Create(Lazy(a))) => gate::packet_create(&cli.global, a),
        Command::Narrow(Lazy(a)) => gate::narrow(&cli.global, a),
        Command::Evaluate(Lazy(a)) => gate::evaluate(&cli.global, a),
        Command::Replay(Lazy(a)) => gate::replay(&cli.global, a),
        Command::Gate(Lazy(c)) => gate::gate(c),
        Command::Check(NoLedger(a)) => gate::check(a),
        Command::Lineage(Lazy(a)) => gate::lineage(&cli.global, a),
        Command::Deadlines(Lazy(a)) => gate::deadlines(&cli.global, a),
        Command::Watch(Lazy(a)) => gate::watch(&cli.global, a),
        Command::Export(Lazy(a)) => gate::export(&cli.global, a),
        Command::VerifyBundle(NoLedger(a)) => read::verify_bundle(a),
        Command::Report(Lazy(a)) => page::report(&cli.global, a),
        Command::ExportAttestation(Lazy(a)) => formats::export_attestation(&cli.global, a),
        Command::Decide(Lazy(a)) => gate::decide(&cli.global, a),
        Command::Verify(Lazy(a)) => read::verify(&cli.global, a),
        Command::Migrate(Lazy(a)) => write::migrate(&cli.global, a),
        Command::Witness(Lazy(c)) => witness::witness(c),
        Command::Completions(NoLedger(a)) => completions(a),
        Command::Man(NoLedger(a)) => man(a),
        Command::Submit(Lazy(a)) => remote::submit(&cli.global, a),
        Command::Publish(Lazy(a)) => remote::publish(&cli.global, a),
        Command::Serve(Lazy(a)) => serve::serve(&cli.global, a),
    };
    remote::cleanup();
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            print_error(&e.to_string(), code);
            code
        }
    }
}

/// Whether the command line asks for JSON output (`--json`, or `--format json` of evaluate):
/// then an error is printed as JSON too.
fn json_requested() -> bool {
    let args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--json"
            || a == "--format=json"
            || (a == "--format" && args.get(i + 1).is_some_and(|n| n == "json"))
    })
}

/// Prints an error on stderr as one line: `evl: MESSAGE`, or under --json one JSON object
/// `{"schema":"evl.error/v1","error":MESSAGE,"exit":CODE}` (docs/CLI-JSON.md).
fn print_error(message: &str, code: i32) {
    if json_requested() {
        #[derive(serde::Serialize)]
        struct JsonError<'a> {
            schema: &'static str,
            error: &'a str,
            exit: i32,
        }
        let e = JsonError {
            schema: "evl.error/v1",
            error: message,
            exit: code,
        };
        eprintln!("{}", serde_json::to_string(&e).expect("an error encodes"));
    } else {
        eprintln!("evl: {message}");
    }
}

/// Whether a verb writes to the ledger (so cannot work on a published log read back).
fn appends(c: &Command) -> bool {
    match c {
        Command::Evaluate(Lazy(a)) => a.record,
        Command::Export(Lazy(a)) => a.checkpoint_key.is_some(),
        Command::Packet(PacketCommand::Create(Lazy(a))) => !a.offline.offline,
        // The other signing verbs refuse it themselves unless --offline (`remote::Sink`).
        Command::Init(_)
        | Command::Checkpoint(_)
        | Command::Watch(_)
        | Command::Migrate(_)
        | Command::Publish(_)
        | Command::Serve(_) => true,
        // Submits over HTTP to a server; refuses other published logs itself.
        Command::Submit(_) => false,
        _ => false,
    }
}

/// A verb's arguments (or sub-verbs), registered with clap only when that verb is the one
/// being run: building every verb's arguments up front costs more start-up time than parsing
/// the one used, and evl runs once per append (docs/PERFORMANCE.md). Help is unchanged.
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| ledger_options(keeping_help(c, T::augment_args)))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| ledger_options(keeping_help(c, T::augment_args_for_update)))
    }
}

/// `cmd` with `--ledger` and `--wait` as its own options, defined as [`Global`] defines them
/// (`evl add --ledger DIR` as `evl --ledger DIR add`).
fn ledger_options(cmd: clap::Command) -> clap::Command {
    let global = <Global as Args>::augment_args(clap::Command::new("evl"));
    let mut cmd = cmd;
    for id in LEDGER_OPTIONS {
        let arg = global
            .get_arguments()
            .find(|a| a.get_id() == id)
            .expect("Global defines it");
        cmd = cmd.arg(arg.clone());
    }
    cmd
}

/// The ids of the options [`ledger_options`] gives every verb.
const LEDGER_OPTIONS: [&str; 2] = ["ledger", "wait"];

/// The value of option `id` given after the verb (the deepest sub-verb that has one), if any:
/// it overrides the one given before the verb, the environment and the default.
fn given_after_verb<T: Clone + Send + Sync + 'static>(m: &clap::ArgMatches, id: &str) -> Option<T> {
    let mut found = None;
    let mut m = m;
    while let Some((_, sub)) = m.subcommand() {
        if sub.ids().any(|i| i.as_str() == id)
            && sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        {
            found = sub.get_one::<T>(id).cloned();
        }
        m = sub;
    }
    found
}

/// Runs `augment` on a verb's command, keeping the help texts the verb already has: done
/// eagerly, the verb's own texts would be set after its arguments' (a flattened struct's doc
/// comment, say), so theirs must not win when it is done late.
fn keeping_help(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let after = cmd.get_after_help().cloned();
    let after_long = cmd.get_after_long_help().cloned();
    let mut cmd = augment(cmd);
    if let Some(a) = about {
        cmd = cmd.about(a);
    }
    if let Some(a) = long_about {
        cmd = cmd.long_about(a);
    }
    if let Some(a) = after {
        cmd = cmd.after_help(a);
    }
    if let Some(a) = after_long {
        cmd = cmd.after_long_help(a);
    }
    cmd
}

impl<T: Subcommand> Subcommand for Lazy<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| with_sub_verbs_ledger_options(T::augment_subcommands(c)))
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| with_sub_verbs_ledger_options(T::augment_subcommands_for_update(c)))
    }
    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

/// A verb with sub-verbs (`key`, `proof`, `gate`, `witness`): `--ledger` and `--wait` for it
/// and for each of its sub-verbs, whose arguments must not be [`Lazy`] (which adds them
/// itself: clap's check of unique names fails every test if one is).
fn with_sub_verbs_ledger_options(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let mut cmd = ledger_options(cmd);
    for n in names {
        cmd = cmd.mut_subcommand(n, ledger_options);
    }
    cmd
}

/// The arguments of a verb that reads no ledger (keygen, verify-bundle, check, completions,
/// man): registered lazily as [`Lazy`] does (without [`ledger_options`]), and with hidden
/// `--ledger` and `--wait` that refuse any use.
#[derive(Debug)]
pub struct NoLedger<T>(pub T);

fn without_ledger_options(cmd: clap::Command) -> clap::Command {
    let refuse = |name: &'static str| {
        move |_: &str| -> Result<String, String> {
            Err(format!("this verb reads no ledger and takes no --{name}"))
        }
    };
    cmd.arg(
        clap::Arg::new("ledger")
            .long("ledger")
            .hide(true)
            .value_parser(refuse("ledger")),
    )
    .arg(
        clap::Arg::new("wait")
            .long("wait")
            .hide(true)
            .num_args(0..=1)
            .default_missing_value("")
            .value_parser(refuse("wait")),
    )
}

impl<T: Args> Args for NoLedger<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        without_ledger_options(cmd.defer(|c| keeping_help(c, T::augment_args)))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        without_ledger_options(cmd.defer(|c| keeping_help(c, T::augment_args_for_update)))
    }
}

impl<T: FromArgMatches> FromArgMatches for NoLedger<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(NoLedger)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

/// Opens the ledger named by the global options, once per verb: a verb's helpers that call
/// this again get the same handle (and its view), not another open.
///
/// A verb runs once and the process ends: the ledger is left open for the process's exit to
/// release (its maps and files), which costs less than unmapping and closing them one by one
/// (docs/PERFORMANCE.md). A verb that opens the ledger repeatedly uses [`open_owned`].
fn open(g: &Global) -> Result<&'static Ledger, Error> {
    if let Some(l) = g.opened.0.get() {
        return Ok(l);
    }
    let ledger: &'static Ledger = Box::leak(Box::new(open_owned(g)?));
    Ok(g.opened.0.get_or_init(|| ledger))
}

/// Opens the ledger named by the global options for `verify`, which reads even a damaged log.
fn open_for_verify(g: &Global) -> Result<Ledger, Error> {
    if crate::publish::is_published(&g.ledger) {
        return remote::fetched(g, true);
    }
    Ledger::open_lazily(&g.ledger, &OpenOptions::default())
}

/// Opens the ledger named by the global options, to be closed by the caller.
fn open_owned(g: &Global) -> Result<Ledger, Error> {
    if crate::publish::is_published(&g.ledger) {
        return remote::fetched(g, false);
    }
    Ledger::open(
        &g.ledger,
        &OpenOptions {
            wait: g.wait.map(Duration::from_secs),
            ..OpenOptions::default()
        },
    )
}

/// Signs and appends one entry, bounding its claimed time by this machine's clock.
fn append(
    ledger: &Ledger,
    key: &SecretKey,
    payload: Payload,
    claimed_at: Timestamp,
    blobs: Vec<Vec<u8>>,
) -> Result<Appended, Error> {
    let draft = Draft {
        payload,
        claimed_at,
        blobs,
    };
    Ok(ledger
        .append_batch(vec![draft], key, Some(Timestamp::now()))?
        .remove(0))
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(template: &str) -> Progress {
        use std::io::IsTerminal;
        Progress(std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("progress template is valid"),
            );
            b
        }))
    }

    /// Shows `done` of `total`.
    fn update(&self, done: u64, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
            b.set_position(done);
        }
    }

    /// Removes the bar.
    fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}

/// A JSON output with its schema version first (docs/CLI-JSON.md).
#[derive(serde::Serialize)]
struct Versioned<'a, T: ?Sized> {
    schema: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// Prints an object as pretty JSON on stdout, with `"schema": SCHEMA` as its first field.
pub(crate) fn print_json_as<T: serde::Serialize + ?Sized>(
    schema: &'static str,
    v: &T,
) -> Result<i32, Error> {
    print_json(&Versioned { schema, body: v })
}

/// Prints a list of objects as a pretty JSON array, each carrying `"schema": SCHEMA`.
pub(crate) fn print_json_list<T: serde::Serialize>(
    schema: &'static str,
    v: &[T],
) -> Result<i32, Error> {
    let list: Vec<Versioned<T>> = v.iter().map(|body| Versioned { schema, body }).collect();
    print_json(&list)
}

/// What an appending verb prints under --json.
fn print_appended(kind: &str, done: &Appended) -> Result<i32, Error> {
    print_json_as(
        "evl.appended/v1",
        &serde_json::json!({"kind": kind, "id": done.id.to_string(), "index": done.index}),
    )
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(v: &T) -> Result<i32, Error> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
    println!("{s}");
    Ok(exit::OK)
}

/// Reads a whole input file, refusing one larger than `max` bytes before reading it.
fn read_file(path: &std::path::Path, max: usize) -> Result<Vec<u8>, Error> {
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > max as u64 {
        return Err(Error::Invalid(format!(
            "{} is {} bytes, over the {max}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(Error::io(path))
}
