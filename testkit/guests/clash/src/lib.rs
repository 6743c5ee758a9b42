//! Test fixture: declares /help, which the built-in core plugin owns.

use kd_plugin::prelude::*;

struct Clash;

impl Plugin for Clash {
    fn manifest() -> Manifest {
        ManifestBuilder::new("clash", "0.1.0", "Claims another plugin's command")
            .command(CommandBuilder::new("help", "A second /help"))
            .build()
    }
}

export_plugin!(Clash);
