//! Test fixture: a plugin named `core`, overriding the built-in one from the plugins folder.

use kd_plugin::prelude::*;

struct Core;

impl Plugin for Core {
    fn manifest() -> Manifest {
        ManifestBuilder::new("core", "9.9.9", "Folder override of the built-in core")
            .command(CommandBuilder::new("help", "Overridden help"))
            .build()
    }

    fn on_command(_cmd: CommandInput) -> Result<Response, String> {
        Ok(reply("overridden help"))
    }
}

export_plugin!(Core);
