//! Kaltura Sessions (KS), signed locally exactly as the official clients'
//! `generateSessionV2` does, and parsed back (v1 and v2) for diagnostics.
//!
//! A KS is a bearer credential: an ADMIN KS never leaves the host. The types here never
//! hold a KS string, so logging them cannot leak one.
//!
//! Shared by the host (`host/src/kaltura`) and the Kaltura stand-in in `testkit`.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

type Enc = cbc::Encryptor<aes::Aes128>;
type Dec = cbc::Decryptor<aes::Aes128>;

/// KS types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    User = 0,
    Admin = 2,
}

impl SessionType {
    pub fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: &str) -> Option<Self> {
        match c {
            "0" => Some(Self::User),
            "2" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// What a KS says, once decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsInfo {
    pub version: u8,
    pub partner_id: u64,
    pub user_id: String,
    pub session_type: SessionType,
    /// Absolute expiry, unix seconds.
    pub expiry: i64,
    /// `name[:value]` pairs as given, `*` for all.
    pub privileges: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KsError {
    #[error("not a KS: {0}")]
    Malformed(&'static str),
    #[error("the KS belongs to partner {0}, not this one")]
    WrongPartner(u64),
    #[error("the KS signature does not match any of the partner's secrets")]
    BadSignature,
    #[error("the KS expired at {0}")]
    Expired(i64),
}

/// Privileges → ordered (name, value) fields: `*` → `all=*`, `name:value` → `name=value`
/// (split at the first `:`), a bare `name` → `name=`.
fn privilege_fields(privileges: &str) -> Vec<(String, String)> {
    privileges
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p == "*" {
                ("all".to_string(), "*".to_string())
            } else {
                match p.split_once(':') {
                    Some((n, v)) => (n.to_string(), v.to_string()),
                    None => (p.to_string(), String::new()),
                }
            }
        })
        .collect()
}

/// PHP's `http_build_query`: form encoding with `*` escaped too.
fn form_encode(fields: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        ser.append_pair(k, v);
    }
    ser.finish().replace('*', "%2A")
}

fn aes_key(secret: &str) -> [u8; 16] {
    let digest = Sha1::digest(secret.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// What a KS grants; [`KsRequest::sign`] turns it into a v2 KS.
#[derive(Debug, Clone, Copy)]
pub struct KsRequest<'a> {
    pub partner_id: u64,
    pub user_id: &'a str,
    pub session_type: SessionType,
    /// Absolute expiry, unix seconds.
    pub expiry: i64,
    /// `name[:value]` pairs, comma-separated; `*` for all.
    pub privileges: &'a str,
}

impl KsRequest<'_> {
    /// Signs a v2 KS with the partner's admin secret and fresh random bytes.
    pub fn sign(&self, secret: &str) -> String {
        self.sign_with_random(secret, rand::random())
    }

    /// Signs with the given 16 "random" bytes (reproducible test vectors).
    pub fn sign_with_random(&self, secret: &str, random: [u8; 16]) -> String {
        let mut fields = privilege_fields(self.privileges);
        fields.push(("_e".into(), self.expiry.to_string()));
        fields.push(("_t".into(), self.session_type.code().to_string()));
        fields.push(("_u".into(), self.user_id.to_string()));
        let encoded = form_encode(&fields);

        let mut body = random.to_vec();
        body.extend_from_slice(encoded.as_bytes());
        let mut plain = Sha1::digest(&body).to_vec();
        plain.extend_from_slice(&body);
        // Zero padding to the block size (not PKCS#7), as the server expects.
        plain.resize(plain.len().div_ceil(16) * 16, 0);

        let len = plain.len();
        let cipher = Enc::new(&aes_key(secret).into(), &[0u8; 16].into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .expect("input is block aligned")
            .to_vec();
        let mut raw = format!("v2|{}|", self.partner_id).into_bytes();
        raw.extend_from_slice(&cipher);
        STANDARD.encode(raw).replace('+', "-").replace('/', "_")
    }
}

fn parse_fields(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Reassembles privileges from the fields of a v2 KS (without the `_` fields).
fn privileges_of(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| match (k.as_str(), v.as_str()) {
            ("all", "*") => "*".to_string(),
            (k, "") => k.to_string(),
            (k, v) => format!("{k}:{v}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes and verifies a KS (v1 or v2) against the partner's secrets and the clock, the
/// way the Kaltura server does.
pub fn verify(ks: &str, partner_id: u64, secrets: &[&str], now: i64) -> Result<KsInfo, KsError> {
    let info = decode(ks, partner_id, secrets)?;
    if info.expiry <= now {
        return Err(KsError::Expired(info.expiry));
    }
    Ok(info)
}

/// Decodes and checks the signature, without the expiry check (diagnostics).
pub fn decode(ks: &str, partner_id: u64, secrets: &[&str]) -> Result<KsInfo, KsError> {
    let v2 = ks.replace('-', "+").replace('_', "/");
    if let Ok(raw) = STANDARD.decode(&v2)
        && raw.starts_with(b"v2|")
    {
        return decode_v2(&raw, partner_id, secrets);
    }
    let raw = STANDARD
        .decode(ks)
        .map_err(|_| KsError::Malformed("not base64"))?;
    decode_v1(&raw, partner_id, secrets)
}

fn decode_v2(raw: &[u8], partner_id: u64, secrets: &[&str]) -> Result<KsInfo, KsError> {
    let rest = &raw[3..];
    let bar = rest
        .iter()
        .position(|b| *b == b'|')
        .ok_or(KsError::Malformed("no partner id"))?;
    let pid: u64 = std::str::from_utf8(&rest[..bar])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(KsError::Malformed("bad partner id"))?;
    if pid != partner_id {
        return Err(KsError::WrongPartner(pid));
    }
    let cipher = &rest[bar + 1..];
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
        return Err(KsError::Malformed("ciphertext is not block aligned"));
    }
    for secret in secrets {
        let mut buf = cipher.to_vec();
        let Ok(plain) = Dec::new(&aes_key(secret).into(), &[0u8; 16].into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
        else {
            continue;
        };
        let end = plain.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        let plain = &plain[..end];
        if plain.len() < 36 || Sha1::digest(&plain[20..]).as_slice() != &plain[..20] {
            continue;
        }
        let query = std::str::from_utf8(&plain[36..])
            .map_err(|_| KsError::Malformed("fields are not text"))?;
        let fields = parse_fields(query);
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        return Ok(KsInfo {
            version: 2,
            partner_id: pid,
            user_id: get("_u").unwrap_or_default().to_string(),
            session_type: get("_t")
                .and_then(SessionType::from_code)
                .ok_or(KsError::Malformed("bad type"))?,
            expiry: get("_e")
                .and_then(|e| e.parse().ok())
                .ok_or(KsError::Malformed("bad expiry"))?,
            privileges: privileges_of(&fields),
        });
    }
    Err(KsError::BadSignature)
}

fn decode_v1(raw: &[u8], partner_id: u64, secrets: &[&str]) -> Result<KsInfo, KsError> {
    let text = std::str::from_utf8(raw).map_err(|_| KsError::Malformed("not text"))?;
    let (hash, info) = text
        .split_once('|')
        .ok_or(KsError::Malformed("no signature separator"))?;
    let parts: Vec<&str> = info.splitn(7, ';').collect();
    if parts.len() < 6 {
        return Err(KsError::Malformed("too few fields"));
    }
    let pid: u64 = parts[0]
        .parse()
        .map_err(|_| KsError::Malformed("bad partner id"))?;
    if pid != partner_id {
        return Err(KsError::WrongPartner(pid));
    }
    let signed = secrets
        .iter()
        .any(|s| hex::encode(Sha1::digest(format!("{s}{info}").as_bytes())) == hash);
    if !signed {
        return Err(KsError::BadSignature);
    }
    Ok(KsInfo {
        version: 1,
        partner_id: pid,
        expiry: parts[2]
            .parse()
            .map_err(|_| KsError::Malformed("bad expiry"))?,
        session_type: SessionType::from_code(parts[3]).ok_or(KsError::Malformed("bad type"))?,
        user_id: parts[5].to_string(),
        privileges: parts.get(6).copied().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const VECTOR: &str = "djJ8MTIzNDU2N3woht9HcLQc4YIjtpCPYFW0nkKFwQ_2IdO29IZtfO_7QVwfs3e8uc0ed6xtAcHsWNuyzFLDMW-rrDHonKmJgJU8WtORKAxQpEG1LsrcTpxVBoKWYznKcANrtaFGkO_IjjWcWqVfriF2JmzxjqtBKgiMhUjNSWicyynJjEuYLbHw_w==";
    const PRIVS: &str = "sview:*,privacycontext:MyCtx,setrole:PLAYBACK_BASE_ROLE";

    fn counting() -> [u8; 16] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn matches_the_documented_v2_vector() {
        let fields = form_encode(&{
            let mut f = privilege_fields(PRIVS);
            f.extend([
                ("_e".into(), "1893456000".into()),
                ("_t".into(), "2".into()),
                ("_u".into(), "discord-bot".into()),
            ]);
            f
        });
        assert_eq!(
            fields,
            "sview=%2A&privacycontext=MyCtx&setrole=PLAYBACK_BASE_ROLE&_e=1893456000&_t=2&_u=discord-bot"
        );
        let request = KsRequest {
            partner_id: 1234567,
            user_id: "discord-bot",
            session_type: SessionType::Admin,
            expiry: 1893456000,
            privileges: PRIVS,
        };
        let ks = request.sign_with_random(SECRET, counting());
        assert_eq!(ks, VECTOR);
    }

    #[test]
    fn v2_round_trips_and_is_checked_like_the_server_does() {
        let info = verify(VECTOR, 1234567, &["other-secret", SECRET], 1_800_000_000).unwrap();
        assert_eq!(info.user_id, "discord-bot");
        assert_eq!(info.session_type, SessionType::Admin);
        assert_eq!(info.expiry, 1893456000);
        assert_eq!(info.privileges, PRIVS);
        assert_eq!(
            verify(VECTOR, 1234567, &["wrong"], 0),
            Err(KsError::BadSignature)
        );
        assert_eq!(
            verify(VECTOR, 7, &[SECRET], 0),
            Err(KsError::WrongPartner(1234567))
        );
        assert_eq!(
            verify(VECTOR, 1234567, &[SECRET], 1893456000),
            Err(KsError::Expired(1893456000))
        );
        // Tampering with one ciphertext byte breaks the SHA-1 check.
        let mut raw = STANDARD
            .decode(VECTOR.replace('-', "+").replace('_', "/"))
            .unwrap();
        let last = raw.len() - 20;
        raw[last] ^= 1;
        let tampered = STANDARD.encode(raw).replace('+', "-").replace('/', "_");
        assert_eq!(
            verify(&tampered, 1234567, &[SECRET], 0),
            Err(KsError::BadSignature)
        );
        assert!(matches!(
            verify("not a ks", 1, &[SECRET], 0),
            Err(KsError::Malformed(_))
        ));
    }

    #[test]
    fn fresh_keys_differ_but_verify() {
        let request = KsRequest {
            partner_id: 42,
            user_id: "discord_1",
            session_type: SessionType::User,
            expiry: 2_000_000_000,
            privileges: "sview:0_abc",
        };
        let (a, b) = (request.sign(SECRET), request.sign(SECRET));
        assert_ne!(a, b, "random bytes make each KS unique");
        let info = verify(&a, 42, &[SECRET], 0).unwrap();
        assert_eq!(
            (
                info.user_id.as_str(),
                info.session_type,
                info.privileges.as_str()
            ),
            ("discord_1", SessionType::User, "sview:0_abc")
        );
    }

    #[test]
    fn v1_is_parsed_and_its_signature_checked() {
        let info = "1234567;1234567;1893456000;0;12345;discord_9;sview:0_x";
        let hash = hex::encode(Sha1::digest(format!("{SECRET}{info}").as_bytes()));
        let ks = STANDARD.encode(format!("{hash}|{info}"));
        let parsed = verify(&ks, 1234567, &[SECRET], 0).unwrap();
        assert_eq!(
            (
                parsed.version,
                parsed.user_id.as_str(),
                parsed.privileges.as_str()
            ),
            (1, "discord_9", "sview:0_x")
        );
        assert_eq!(
            verify(&ks, 1234567, &["nope"], 0),
            Err(KsError::BadSignature)
        );
    }
}
