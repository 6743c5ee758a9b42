//! Test fixture: built against a future major of the contract (0.2.0), which this host must
//! refuse with the version named.

wit_bindgen::generate!({
    inline: r#"
        package kaltura-discord:plugin@0.2.0;
        interface log {
            log: func(message: string);
        }
        world plugin {
            import log;
            export ping: func() -> string;
        }
    "#,
    world: "plugin",
});

struct Future;

impl Guest for Future {
    fn ping() -> String {
        kaltura_discord::plugin::log::log("hello from the future");
        "pong".into()
    }
}

export!(Future);
