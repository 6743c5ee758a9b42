//! Test fixture: version A of the "swap" plugin (hot-reload tests swap the two files).

use kd_plugin::prelude::*;

struct Swap;

impl Plugin for Swap {
    fn manifest() -> Manifest {
        ManifestBuilder::new("swap", "1.0.0-a", "Hot reload fixture")
            .command(CommandBuilder::new("swap", "Which version answers"))
            .build()
    }

    fn on_command(_cmd: CommandInput) -> Result<Response, String> {
        Ok(reply("version A"))
    }
}

export_plugin!(Swap);
