//! The demo media the HTML5 player plays in dev/demo and in tests: a WAV the host writes
//! itself (so the repository ships no binary), small (< 1 MB) and easy to follow by ear: a
//! rising tone that restarts every 10 seconds, with a click on each second.

use std::path::{Path, PathBuf};

const RATE: u32 = 8_000;
const SECONDS: u32 = 120;

/// The WAV bytes: 8 kHz, mono, 8-bit PCM.
pub fn sample_wav() -> Vec<u8> {
    let n = RATE * SECONDS;
    let mut out = Vec::with_capacity(44 + n as usize);
    let mut put = |b: &[u8]| out.extend_from_slice(b);
    put(b"RIFF");
    put(&(36 + n).to_le_bytes());
    put(b"WAVEfmt ");
    put(&16u32.to_le_bytes());
    put(&1u16.to_le_bytes()); // PCM
    put(&1u16.to_le_bytes()); // mono
    put(&RATE.to_le_bytes());
    put(&RATE.to_le_bytes()); // bytes per second
    put(&1u16.to_le_bytes()); // block align
    put(&8u16.to_le_bytes()); // bits per sample
    put(b"data");
    put(&n.to_le_bytes());
    let mut phase = 0.0f64;
    for i in 0..n {
        let t = i as f64 / RATE as f64;
        let freq = 220.0 + 44.0 * (t % 10.0);
        phase += 2.0 * std::f64::consts::PI * freq / RATE as f64;
        let click = if t.fract() < 0.01 { 0.6 } else { 0.0 };
        let v = 0.25 * phase.sin() + click;
        out.push((128.0 + 127.0 * v.clamp(-1.0, 1.0)) as u8);
    }
    out
}

/// Writes the media into `data/activity-media/` (once) and returns the folder.
pub fn ensure(data: &Path) -> std::io::Result<PathBuf> {
    let dir = data.join("activity-media");
    let file = dir.join("sample.wav");
    if !file.exists() {
        std::fs::create_dir_all(&dir)?;
        crate::config::guild::write_atomically_bytes(&file, &sample_wav())?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_valid_wav_under_a_megabyte() {
        let w = super::sample_wav();
        assert!(w.len() < 1024 * 1024);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(w[4..8].try_into().unwrap()) as usize,
            w.len() - 8
        );
        assert_eq!(&w[36..40], b"data");
    }
}
