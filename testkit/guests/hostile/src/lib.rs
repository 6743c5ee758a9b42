//! Test fixture: a plugin that misbehaves in every way the sandbox must contain.

use kd_plugin::prelude::*;

struct Hostile;

fn grow_forever() -> usize {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        if hoard.len() == usize::MAX {
            return hoard.len();
        }
    }
}

/// Recursion the optimiser cannot turn into a loop.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    if std::hint::black_box(n) == 0 {
        return 0;
    }
    recurse(n + 1) + pad[(n % 64) as usize]
}

impl Plugin for Hostile {
    fn manifest() -> Manifest {
        let cmd = |name: &str, desc: &str| CommandBuilder::new(name, desc);
        ManifestBuilder::new("hostile", "0.1.0", "Misbehaves on purpose (test fixture)")
            .command(cmd("spin", "Loops forever"))
            .command(cmd("hog", "Allocates without bound"))
            .command(cmd("recurse", "Overflows the stack"))
            .command(cmd("panic", "Panics"))
            .command(cmd("huge", "Answers over Discord's limits"))
            .command(cmd("sneak", "Calls http without a grant"))
            .command(cmd("slow", "Sleeps 4 seconds, then answers"))
            .command(cmd("fine", "Answers normally"))
            .command(cmd("chatty", "Logs a thousand lines"))
            .capability(Capability::Http)
            .capability(Capability::Log)
            .build()
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        match cmd.name.as_str() {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = x.wrapping_mul(31).wrapping_add(7);
                    if x == 1 {
                        return Ok(reply("unreachable"));
                    }
                }
            }
            "hog" => Ok(reply(format!("{}", grow_forever()))),
            "recurse" => Ok(reply(format!("{}", recurse(1)))),
            "panic" => panic!("hostile plugin panics on purpose"),
            "huge" => Ok(reply("x".repeat(5000))),
            "sneak" => {
                let req = http::Request {
                    method: "GET".into(),
                    url: "http://127.0.0.1:9/".into(),
                    headers: vec![],
                    body: None,
                };
                match http::fetch(&req) {
                    Ok(_) => Ok(reply("fetched")),
                    Err(CapError::Denied(why)) => Ok(reply_ephemeral(format!("denied: {why}"))),
                    Err(e) => Ok(reply_ephemeral(format!("other error: {e:?}"))),
                }
            }
            "slow" => {
                std::thread::sleep(std::time::Duration::from_secs(4));
                Ok(reply("slow answer"))
            }
            "chatty" => {
                for i in 0..1000 {
                    log::info(&format!("line {i}"));
                }
                Ok(reply("logged"))
            }
            _ => Ok(reply("fine")),
        }
    }
}

export_plugin!(Hostile);
