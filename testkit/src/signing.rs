//! Ed25519 signing of interaction requests, the way Discord signs them.

use ed25519_dalek::{Signer, SigningKey};

/// A Discord application's signing key pair.
#[derive(Clone)]
pub struct InteractionSigner {
    key: SigningKey,
}

impl InteractionSigner {
    /// A fixed key from a 32-byte seed (reproducible tests and demos).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A fresh random key.
    pub fn random() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The public key as Discord shows it (hex), for `DISCORD_PUBLIC_KEY`.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// `X-Signature-Ed25519` for a timestamp and body.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut msg = Vec::with_capacity(timestamp.len() + body.len());
        msg.extend_from_slice(timestamp.as_bytes());
        msg.extend_from_slice(body);
        hex::encode(self.key.sign(&msg).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_vector() {
        let s = InteractionSigner::from_seed([0; 32]);
        assert_eq!(
            s.public_key_hex(),
            "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
        );
        assert_eq!(
            s.sign("1700000000", br#"{"type":1}"#),
            "f2053542c8500e9bf6b68eb1efc69823f8c01c7718ab0353b125826418494b6ed523027cf852f54edf27d3d3e13f3de15968b6df027ae1fc5dcab21f0b7ff30c"
        );
    }
}
