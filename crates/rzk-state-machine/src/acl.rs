//! ACL rules: `PrepRequestProcessor.fixupACL`, `ZooKeeperServer.checkACL`, the digest and ip
//! providers, and the ids `addauth` gives a connection.

use base64::Engine as _;
use rzk_proto::{codes::perms, Acl, ErrorCode, Id};
use sha1::{Digest as _, Sha1};

use crate::Options;

/// `user:base64(sha1("user:password"))`, the id the digest scheme stores and matches
/// (`DigestAuthenticationProvider.generateDigest`). Without a colon the whole text is the user.
pub fn digest_id(user_colon_password: &str) -> String {
    let user = user_colon_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_colon_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The id an `addauth scheme auth` gives a connection. `digest` always succeeds; `ip` uses the
/// peer address; any other scheme fails with AuthFailed (rzk serves no SASL/x509 providers).
/// The `super` id needs the configured superDigest: see [`auth_ids_for`].
pub fn auth_id_for(
    scheme: &str,
    auth_bytes: &[u8],
    peer_ip: Option<&str>,
) -> Result<Id, ErrorCode> {
    match scheme {
        "digest" => {
            let text = String::from_utf8_lossy(auth_bytes);
            Ok(Id {
                scheme: "digest".to_string(),
                id: digest_id(&text),
            })
        }
        "ip" => match peer_ip {
            Some(ip) => Ok(Id {
                scheme: "ip".to_string(),
                id: ip.to_string(),
            }),
            None => Err(ErrorCode::AuthFailed),
        },
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// Every id an `addauth` adds: like [`auth_id_for`], plus `super:""` first when a digest
/// matches `super_digest` (`super:<base64 sha1>`), as `DigestAuthenticationProvider` does.
pub fn auth_ids_for(
    scheme: &str,
    auth_bytes: &[u8],
    peer_ip: Option<&str>,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, ErrorCode> {
    let id = auth_id_for(scheme, auth_bytes, peer_ip)?;
    let mut ids = Vec::with_capacity(2);
    if scheme == "digest" && super_digest == Some(id.id.as_str()) {
        ids.push(Id {
            scheme: "super".to_string(),
            id: String::new(),
        });
    }
    ids.push(id);
    Ok(ids)
}

/// `fixupACL`: remove duplicates, reject an empty list, expand `auth` to the caller's
/// authenticated ids, and reject schemes or ids no provider accepts.
pub(crate) fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        match entry.id.scheme.as_str() {
            "world" if entry.id.id == "anyone" => fixed.push(entry.clone()),
            "auth" => fixup_auth_entry(entry.perms, auth, &mut fixed)?,
            "digest" if is_valid_digest_id(&entry.id.id) => fixed.push(entry.clone()),
            "ip" if parse_ip_pattern(&entry.id.id).is_some() => fixed.push(entry.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(fixed)
}

/// Only ids from providers that say `isAuthenticated` count: digest does, ip does not, and
/// `super` has no provider of its own.
fn fixup_auth_entry(perms: i32, auth: &[Id], fixed: &mut Vec<Acl>) -> Result<(), ErrorCode> {
    let before = fixed.len();
    for id in auth.iter().filter(|id| id.scheme == "digest") {
        fixed.push(Acl {
            perms,
            id: id.clone(),
        });
    }
    if fixed.len() == before {
        return Err(ErrorCode::InvalidAcl);
    }
    Ok(())
}

/// `id.split(":").length == 2` in Java, where trailing empty parts are dropped.
fn is_valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// `checkACL`: skipACL, an empty list and a `super` id allow everything; otherwise some entry
/// carrying one of `perm`'s bits must match one of the caller's ids.
pub(crate) fn check_acl(
    options: &Options,
    acl: &[Acl],
    perm: i32,
    auth: &[Id],
) -> Result<(), ErrorCode> {
    if options.skip_acl || acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return Ok(());
    }
    let allowed = acl
        .iter()
        .filter(|entry| entry.perms & perm != 0)
        .any(|entry| entry_matches(entry, auth));
    if allowed {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn entry_matches(entry: &Acl, auth: &[Id]) -> bool {
    match entry.id.scheme.as_str() {
        "world" => entry.id.id == "anyone",
        "digest" => auth
            .iter()
            .any(|id| id.scheme == "digest" && id.id == entry.id.id),
        "ip" => auth
            .iter()
            .any(|id| id.scheme == "ip" && ip_matches(&id.id, &entry.id.id)),
        _ => false,
    }
}

/// getACL without ADMIN shows digest ids as `user:x` (the Java regex `:.*` → `:x`).
pub(crate) fn mask_digest_passwords(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            let mut entry = entry.clone();
            if entry.id.scheme == "digest" {
                if let Some(colon) = entry.id.id.find(':') {
                    entry.id.id.truncate(colon);
                    entry.id.id.push_str(":x");
                }
            }
            entry
        })
        .collect()
}

/// The permission each ACL check asks for, named as ZooKeeper's op table does.
pub(crate) const PERM_READ: i32 = perms::READ;
pub(crate) const PERM_WRITE: i32 = perms::WRITE;
pub(crate) const PERM_CREATE: i32 = perms::CREATE;
pub(crate) const PERM_DELETE: i32 = perms::DELETE;
pub(crate) const PERM_ADMIN: i32 = perms::ADMIN;

/// `addr[/bits]` as address bytes and a prefix length (`IPAuthenticationProvider.isValid`).
fn parse_ip_pattern(pattern: &str) -> Option<(Vec<u8>, usize)> {
    let (address, bits) = match pattern.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (pattern, None),
    };
    let bytes = address_bytes(address)?;
    let width = bytes.len() * 8;
    let bits = match bits {
        Some(text) => text.parse::<usize>().ok().filter(|bits| *bits <= width)?,
        None => width,
    };
    Some((bytes, bits))
}

/// Dotted-quad IPv4 (leading zeros allowed, as Java's `Integer.parseInt` allows) or IPv6.
fn address_bytes(address: &str) -> Option<Vec<u8>> {
    if address.contains(':') {
        return address
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| ip.octets().to_vec());
    }
    let parts: Vec<&str> = address.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|part| {
            let valid =
                !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit());
            if valid {
                part.parse::<u16>()
                    .ok()
                    .filter(|value| *value <= 255)
                    .map(|value| value as u8)
            } else {
                None
            }
        })
        .collect()
}

fn ip_matches(remote: &str, pattern: &str) -> bool {
    let Some((pattern_bytes, bits)) = parse_ip_pattern(pattern) else {
        return false;
    };
    let Some(remote_bytes) = address_bytes(remote) else {
        return false;
    };
    if remote_bytes.len() != pattern_bytes.len() {
        return false;
    }
    pattern_bytes
        .iter()
        .zip(&remote_bytes)
        .enumerate()
        .all(|(index, (want, have))| {
            let mask = prefix_mask(bits, index);
            want & mask == have & mask
        })
}

/// The mask for byte `index` of an address under a `bits`-long prefix.
fn prefix_mask(bits: usize, index: usize) -> u8 {
    let covered = bits.saturating_sub(index * 8).min(8);
    if covered == 0 {
        0
    } else {
        0xffu8 << (8 - covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_string(),
            id: id.to_string(),
        }
    }

    fn acl(perms: i32, scheme: &str, name: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, name),
        }
    }

    // Goal: the digest matches ZooKeeper's documented example (`super:superpw` style).
    #[test]
    fn digest_is_sha1_base64_of_user_colon_password() {
        // Known value: DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert!(digest_id("nocolon").starts_with("nocolon:"));
    }

    #[test]
    fn auth_ids() {
        assert_eq!(
            auth_id_for("digest", b"u:p", None).unwrap().id,
            digest_id("u:p")
        );
        assert_eq!(
            auth_id_for("ip", b"", Some("10.0.0.1")),
            Ok(id("ip", "10.0.0.1"))
        );
        assert_eq!(auth_id_for("ip", b"", None), Err(ErrorCode::AuthFailed));
        assert_eq!(
            auth_id_for("kerberos", b"x", None),
            Err(ErrorCode::AuthFailed)
        );
        let super_digest = digest_id("super:test");
        let ids = auth_ids_for("digest", b"super:test", None, Some(&super_digest)).unwrap();
        assert_eq!(ids, vec![id("super", ""), id("digest", &super_digest)]);
        let ids = auth_ids_for("digest", b"super:wrong", None, Some(&super_digest)).unwrap();
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn fixup_rules() {
        let world = acl(31, "world", "anyone");
        assert_eq!(fixup_acl(&[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup_acl(&[world.clone(), world.clone()], &[]),
            Ok(vec![world.clone()])
        );
        assert_eq!(
            fixup_acl(&[acl(31, "auth", "")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(31, "auth", "")], &[id("ip", "1.2.3.4")]),
            Err(ErrorCode::InvalidAcl)
        );
        let user = id("digest", "u:abc");
        assert_eq!(
            fixup_acl(&[acl(5, "auth", "")], std::slice::from_ref(&user)),
            Ok(vec![Acl { perms: 5, id: user }])
        );
        assert_eq!(
            fixup_acl(&[acl(31, "world", "someone")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(31, "digest", "nopassword")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(31, "digest", "u:")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fixup_acl(&[acl(31, "digest", "u:p:")], &[]).is_ok());
        assert!(fixup_acl(&[acl(31, "ip", "10.0.0.0/8")], &[]).is_ok());
        assert_eq!(
            fixup_acl(&[acl(31, "ip", "10.0.0.0/33")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(31, "ip", "host")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(31, "super", "")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn ip_matching() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(!ip_matches("10.1.2.4", "10.1.2.3"));
        assert!(ip_matches("10.1.2.255", "10.1.2.128/25"));
        assert!(!ip_matches("10.1.2.127", "10.1.2.128/25"));
        assert!(ip_matches("::1", "::1"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
    }

    #[test]
    fn check_rules() {
        let options = Options::default();
        let read_only = [acl(perms::READ, "world", "anyone")];
        assert_eq!(check_acl(&options, &read_only, PERM_READ, &[]), Ok(()));
        assert_eq!(
            check_acl(&options, &read_only, PERM_WRITE, &[]),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check_acl(&options, &read_only, PERM_WRITE, &[id("super", "")]),
            Ok(())
        );
        assert_eq!(check_acl(&options, &[], PERM_WRITE, &[]), Ok(()));
        let skip = Options {
            skip_acl: true,
            ..Options::default()
        };
        assert_eq!(check_acl(&skip, &read_only, PERM_WRITE, &[]), Ok(()));
        let digest = [acl(perms::ALL, "digest", "u:abc")];
        assert_eq!(
            check_acl(&options, &digest, PERM_READ, &[id("digest", "u:abc")]),
            Ok(())
        );
        assert_eq!(
            check_acl(&options, &digest, PERM_READ, &[id("digest", "u:abd")]),
            Err(ErrorCode::NoAuth)
        );
        let ip = [acl(perms::ALL, "ip", "127.0.0.0/8")];
        assert_eq!(
            check_acl(&options, &ip, PERM_READ, &[id("ip", "127.0.0.1")]),
            Ok(())
        );
        assert_eq!(
            check_acl(&options, &ip, PERM_READ, &[id("ip", "10.0.0.1")]),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn masking() {
        let masked =
            mask_digest_passwords(&[acl(31, "digest", "u:secret:more"), acl(31, "ip", "1.2.3.4")]);
        assert_eq!(
            masked,
            vec![acl(31, "digest", "u:x"), acl(31, "ip", "1.2.3.4")]
        );
    }
}
