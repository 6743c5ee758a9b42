//! Test fixture: uses the kv capability without requesting it in its manifest.

use kd_plugin::prelude::*;

struct Liar;

impl Plugin for Liar {
    fn manifest() -> Manifest {
        ManifestBuilder::new("liar", "0.1.0", "Imports more than it requests")
            .command(CommandBuilder::new("liar", "Reads kv"))
            .build()
    }

    fn on_command(_cmd: CommandInput) -> Result<Response, String> {
        let v = kv::get("k").map_err(|e| format!("{e:?}"))?;
        Ok(reply(format!("{v:?}")))
    }
}

export_plugin!(Liar);
