//! Request signatures of ACL 1.0 (ops-surface §6.3): Base64(HmacSHA1(secretKey, the values of
//! every ext field but `Signature`, sorted by key, then the body)). The broker checks them over
//! the fields exactly as they arrived; Petrel's own client signs with the same function.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::remoting::RemotingCommand;

pub const ACCESS_KEY: &str = "AccessKey";
pub const SIGNATURE: &str = "Signature";
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// Admin tools up to V4_9_3 (version ordinal 399) added this flag after signing.
const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
const V4_9_3: i32 = 399;

fn mac(cmd: &RemotingCommand, secret_key: &str) -> Hmac<Sha1> {
    let skip_unique = cmd.version <= V4_9_3;
    let sorted: BTreeMap<&str, &str> = cmd
        .ext_fields
        .iter()
        .filter(|(k, _)| *k != SIGNATURE && !(skip_unique && *k == UNIQUE_KEY_QUERY))
        .collect();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes keys of any length");
    for value in sorted.values() {
        mac.update(value.as_bytes());
    }
    mac.update(&cmd.body);
    mac
}

/// The signature of `cmd` (its `Signature` field left out) under `secret_key`.
pub fn sign(cmd: &RemotingCommand, secret_key: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(cmd, secret_key).finalize().into_bytes())
}

/// Whether `cmd`'s `Signature` field is its signature under `secret_key`, compared in
/// constant time.
pub fn verify(cmd: &RemotingCommand, secret_key: &str) -> bool {
    let Some(given) = cmd.ext_fields.get(SIGNATURE) else {
        return false;
    };
    match base64::engine::general_purpose::STANDARD.decode(given) {
        Ok(bytes) => mac(cmd, secret_key).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// Adds `AccessKey` and `Signature` (and `SecurityToken` when given) to `cmd`, as a stock
/// client's ACL hook does right before sending.
pub fn sign_request(
    cmd: &mut RemotingCommand,
    access_key: &str,
    secret_key: &str,
    token: Option<&str>,
) {
    cmd.ext_fields.insert(ACCESS_KEY, access_key);
    if let Some(token) = token {
        cmd.ext_fields.insert(SECURITY_TOKEN, token);
    }
    let signature = sign(cmd, secret_key);
    cmd.ext_fields.insert(SIGNATURE, signature);
}
