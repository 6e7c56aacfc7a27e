//! `evl witness`: run a C2SP tlog-witness, configure the logs it knows, print its key
//! (docs/WITNESS.md).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::{Error, exit};
use crate::keys::{self, PublicKey};
use crate::witness::{self, server};

#[derive(Subcommand, Debug)]
pub enum WitnessCommand {
    /// Serve C2SP tlog-witness `POST /add-checkpoint` and cosign with tlog-cosignature/v1.
    ///
    /// Each checkpoint must be signed by a log key configured with `evl witness add-log` and be
    /// consistent with the latest one this witness cosigned for its origin (kept in
    /// --state DIR, written durably before every reply). Answers: 200 cosignature line; 400
    /// malformed request; 404 unknown origin; 403 no valid log signature; 409 (body: the size
    /// it holds, text/x.tlog.size) when the old size is not that size or the same size has
    /// another root; 422 when the consistency proof does not verify. Prints one line
    /// `listening http://ADDR vkey VKEY` on stdout once it accepts connections (https with
    /// --tls-cert/--tls-key); the slow-client limits of `evl serve`; stops on SIGINT or
    /// SIGTERM.
    #[command(
        after_help = "EXIT CODES:\n    0  stopped by SIGINT or SIGTERM\n    2  bad arguments or name, an unreadable key, a state directory that cannot be created,\n       read or locked (another witness serves it), an address that cannot be bound, or a TLS\n       certificate or key that cannot be read or parsed or that do not match\n    3  the key file or --tls-key file is readable by others\n\nEXAMPLE:\n    evl keygen witness1 --dir keys\n    evl witness add-log --state /var/lib/evl-witness --origin example.org/mesh-gate \\\n        --vkey 'example.org/mesh-gate+5c8409be+AcPl…'\n    evl witness serve --state /var/lib/evl-witness --name witness.example.org/w1 \\\n        --key keys/witness1.key --addr 127.0.0.1:7380\n\nFormats: docs/WITNESS.md."
    )]
    Serve(ServeArgs),
    /// Trust a log: its origin and a C2SP note verifier key (as `evl checkpoint --json`
    /// prints `verifier_key`). Repeat with another --vkey to trust a second key of the log.
    /// A running witness reads the list on every request.
    #[command(
        after_help = "EXIT CODES:\n    0  added, or already present\n    2  malformed origin or verifier key, or a config that cannot be read or written"
    )]
    AddLog(AddLogArgs),
    /// Print a witness's verifier key (NAME+ID+base64(0x04 || key)) and its raw public key in
    /// hex, the form a witness policy file names it by.
    #[command(after_help = "EXIT CODES:\n    0  printed\n    2  unreadable key or bad name")]
    Vkey(VkeyArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The witness state directory (created if missing): witness.json and state/.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// The witness's Ed25519 secret key (PKCS#8 PEM or OpenSSH ed25519, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The witness name: the key name of its cosignature lines, e.g. witness.example.org/w1.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The address to listen on (port 0: any free port, printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7380")]
    pub addr: SocketAddr,
    /// Print the result as JSON (`"schema": "evl.witness-serve/v1"`).
    #[arg(long)]
    pub json: bool,
    /// TLS and slow-client limits (docs/SERVER.md §"TLS" and §"Limits").
    #[command(flatten)]
    pub listen: crate::net::listen::ListenArgs,
}

#[derive(Args, Debug)]
pub struct AddLogArgs {
    /// The witness state directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// The log's origin line.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: String,
    /// The log's C2SP note verifier key, named by the origin.
    #[arg(long, value_name = "VKEY")]
    pub vkey: String,
    /// Print the result as JSON (`"schema": "evl.witness-add-log/v1"`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VkeyArgs {
    /// The witness name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The witness key: its public key file (.pub) or its secret key file.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Print the result as JSON (`"schema": "evl.witness-vkey/v1"`).
    #[arg(long)]
    pub json: bool,
}

pub fn witness(c: WitnessCommand) -> Result<i32, Error> {
    match c {
        WitnessCommand::Serve(a) => serve(a),
        WitnessCommand::AddLog(a) => {
            let changed = server::add_log(&a.state, &a.origin, &a.vkey).map_err(Error::Invalid)?;
            if a.json {
                return super::print_json_as(
                    "evl.witness-add-log/v1",
                    &serde_json::json!({"origin": a.origin, "added": changed}),
                );
            }
            println!(
                "{}: {}",
                if changed { "added" } else { "unchanged" },
                a.origin
            );
            Ok(exit::OK)
        }
        WitnessCommand::Vkey(a) => {
            let public = public_of(&a.key)?;
            if !signed_note::is_key_name_valid(&a.name) {
                return Err(Error::Invalid(format!(
                    "'{}' is not a valid witness name",
                    a.name
                )));
            }
            if a.json {
                return super::print_json_as(
                    "evl.witness-vkey/v1",
                    &serde_json::json!({
                        "name": a.name,
                        "vkey": witness::vkey(&a.name, &public),
                        "public_key": hex::encode(public.bytes()),
                    }),
                );
            }
            println!("vkey {}", witness::vkey(&a.name, &public));
            println!("witness {} {}", a.name, hex::encode(public.bytes()));
            Ok(exit::OK)
        }
    }
}

fn public_of(path: &std::path::Path) -> Result<PublicKey, Error> {
    match keys::read_public(path) {
        Ok((pk, _)) => Ok(pk),
        Err(_) => Ok(keys::read_secret(path)?.public()),
    }
}

fn serve(a: ServeArgs) -> Result<i32, Error> {
    // The certificate and key are checked first, so a bad one binds nothing.
    let listen = a.listen.prepare()?;
    let scheme = listen.scheme();
    let key = keys::read_secret(&a.key)?;
    let w = server::Witness::open(&a.state, &a.name, key).map_err(Error::Invalid)?;
    let vkey = w.vkey();
    server::serve(w, a.addr, listen, |addr| {
        let mut out = std::io::stdout();
        if a.json {
            let line = serde_json::json!({
                "schema": "evl.witness-serve/v1",
                "url": format!("{scheme}://{addr}"),
                "vkey": vkey,
            });
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "listening {scheme}://{addr} vkey {vkey}");
        }
        let _ = out.flush();
    })
    .map_err(Error::io(format!("listening on {}", a.addr)))?;
    Ok(exit::OK)
}
