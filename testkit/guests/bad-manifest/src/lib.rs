//! Test fixture: a manifest Discord would reject (26 options).

use kd_plugin::prelude::*;

struct Bad;

impl Plugin for Bad {
    fn manifest() -> Manifest {
        let mut cmd = CommandBuilder::new("toomany", "Too many options");
        for i in 0..26 {
            cmd = cmd.option(OptionBuilder::text(&format!("o{i}"), "an option"));
        }
        ManifestBuilder::new("bad-manifest", "0.1.0", "Invalid manifest")
            .command(cmd)
            .build()
    }
}

export_plugin!(Bad);
